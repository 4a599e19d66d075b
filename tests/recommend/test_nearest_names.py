"""The names' embeddings of the nearest-names signal: built ahead of time, read from disk,
and never encoded by a reader."""

import numpy as np

from recommend import nearest_names
from tests.conftest import TEST_EMBEDDER


class Refuses:
    """The test encoder's name and version, but it must not be asked to encode."""

    name, version = TEST_EMBEDDER, "1"

    def encode(self, texts, **_):
        raise AssertionError("encoded names outside a build")


def test_a_build_writes_them_once_and_a_new_process_reads_them_from_disk(cold_name_cache, monkeypatch):
    path = nearest_names.build("task", TEST_EMBEDDER)

    assert [p.name for p in cold_name_cache.iterdir()] == [path.name]  # no partial file left
    names, vectors = nearest_names.name_vectors("task", TEST_EMBEDDER)
    assert len(names) > 1000 and vectors.shape == (len(names), 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)

    nearest_names.forget_loaded()  # as in a fresh process
    monkeypatch.setattr(nearest_names, "get_encoder", lambda name: Refuses())
    again_names, again = nearest_names.name_vectors("task", TEST_EMBEDDER)
    assert again_names == names and np.array_equal(again, vectors)
    assert nearest_names.build("task", TEST_EMBEDDER) == path  # built already: nothing encoded


def test_before_a_build_readers_get_no_name_near_and_encode_nothing(cold_name_cache, monkeypatch):
    monkeypatch.setattr(nearest_names, "get_encoder", lambda name: Refuses())
    papers = np.eye(3, 256, dtype=np.float32)

    assert nearest_names.name_vectors("task", TEST_EMBEDDER) is None
    assert not nearest_names.is_built("task", TEST_EMBEDDER)
    rows = nearest_names.weights(papers, "task", TEST_EMBEDDER)
    assert rows.shape == (3, len(nearest_names.names_of_kind("task"))) and not rows.any()
    assert nearest_names.nearest(papers, "task", TEST_EMBEDDER) == [[], [], []]
    assert not cold_name_cache.exists()


def test_a_reader_sees_names_built_after_it_first_looked(cold_name_cache):
    papers = np.eye(2, 256, dtype=np.float32)
    assert nearest_names.name_vectors("task", TEST_EMBEDDER) is None  # a miss is not remembered

    nearest_names.build("task", TEST_EMBEDDER)  # by the worker, in another process

    assert nearest_names.weights(papers, "task", TEST_EMBEDDER).any()
