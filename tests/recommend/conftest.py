"""Every recommend test starts with the nearest names' embeddings not built (a cache
directory of its own, nothing loaded in the process), as a fresh deployment does; a test
that needs them asks for `built_names`, as the worker's job would have built them."""

import pytest

from recommend import nearest_names
from tests.conftest import TEST_EMBEDDER


@pytest.fixture(autouse=True)
def cold_name_cache(tmp_path, monkeypatch):
    directory = tmp_path / "nearest-names"
    monkeypatch.setattr(nearest_names, "CACHE_DIR", directory)
    nearest_names.forget_loaded()
    yield directory
    nearest_names.forget_loaded()


@pytest.fixture
def built_names(cold_name_cache):
    return nearest_names.build("task", TEST_EMBEDDER)
