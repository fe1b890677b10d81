"""The directory in two standards' words: FHIR R4 with the Da Vinci PDex Plan-Net profiles
(``fhir.py``, served by ``fhir_views.py`` at /fhir/) and Open Referral HSDS 3.0 (``hsds.py``,
served by ``hsds_views.py`` at /hsds/ and written by ``manage.py export_hsds``).

Both read published listings only and only read: the mappings are the one place each standard's
shape is decided (docs/fhir.md, docs/hsds.md).
"""
