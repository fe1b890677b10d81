import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits and other cached state never leak from one test into the next."""
    cache.clear()
    yield
    cache.clear()
