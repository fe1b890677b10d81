import pytest
from django.conf import settings
from django.core.cache import cache


def pytest_collection_modifyitems(items):
    """With read replicas configured (test mirrors of the test database), the public pages read
    through them, so every database test may use every alias."""
    if not getattr(settings, "DATABASE_REPLICA_URLS", None):
        return
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and "databases" not in marker.kwargs:
            item.add_marker(
                pytest.mark.django_db(*marker.args, **{**marker.kwargs, "databases": "__all__"}),
                append=False,
            )


@pytest.fixture(scope="session", autouse=True)
def _close_mirror_connections(request):
    """The replicas' own connections to the test database must be closed before PostgreSQL
    can drop it at the end of the run."""
    if not getattr(settings, "DATABASE_REPLICA_URLS", None):
        yield
        return
    request.getfixturevalue("django_db_setup")
    yield
    from django.db import connections

    connections.close_all()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits and other cached state never leak from one test into the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _private_upload_dir(settings, tmp_path_factory):
    """CSV uploads go to a folder of the test's own, never the checkout's var/imports."""
    settings.IMPORT_UPLOAD_DIR = tmp_path_factory.mktemp("imports")


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory):
    """collectstatic's output (hashed, compressed) for production server processes, built once."""
    from tests.servers import manage, production_env

    root = tmp_path_factory.mktemp("collected-static")
    result = manage("collectstatic", "--noinput", "-v0", env=production_env(STATIC_ROOT=str(root)))
    assert result.returncode == 0, result.stderr
    return root
