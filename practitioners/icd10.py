"""ICD-10-CM codes, checked against the code list that the ``simple-icd-10-cm`` package ships.

The package parses its whole code list on import (about 2.5 s), so it is imported only when a
code is checked (staff saving a condition, the tests), never on a public page.
"""

from __future__ import annotations

import re
import warnings
from functools import cache
from types import ModuleType

from django.core.exceptions import ValidationError

_SEPARATORS = re.compile(r"[\s,;]+")


@cache
def _code_list() -> ModuleType:
    with warnings.catch_warnings():
        # It reads its data with importlib.resources' legacy read_text().
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

    return simple_icd_10_cm


def split_codes(value: str) -> list[str]:
    """ "m77.1, M72.2" -> ["M77.1", "M72.2"]: upper case, in the order typed, each once."""
    return list(dict.fromkeys(code.upper() for code in _SEPARATORS.split(value) if code))


def is_code(code: str) -> bool:
    """A category, subcategory or full code (not a chapter or block such as M70-M79)."""
    code_list = _code_list()
    return code_list.is_valid_item(code) and not code_list.is_chapter_or_block(code)


def normalise_codes(value: str) -> str:
    """The codes in ``value`` with their dots (M722 -> M72.2), comma-separated; raises
    ValidationError naming each code that is not in ICD-10-CM."""
    codes = split_codes(value)
    unknown = [code for code in codes if not is_code(code)]
    if unknown:
        raise ValidationError(
            "Not an ICD-10-CM code: %(codes)s. Use codes such as M77.1 (lateral epicondylitis).",
            code="unknown_icd10",
            params={"codes": ", ".join(unknown)},
        )
    code_list = _code_list()
    return ", ".join(code_list.add_dot(code) for code in codes)


def validate_codes(value: str) -> None:
    normalise_codes(value)


def description(code: str) -> str:
    return _code_list().get_description(code)
