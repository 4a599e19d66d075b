"""The names' embeddings of the nearest-names signal: computed once, then read from disk."""

import numpy as np

from recommend import nearest_names


class Refuses:
    """The test encoder's name and version, but it must not be asked to encode again."""

    name, version = "hash:256", "1"

    def encode(self, texts, **_):
        raise AssertionError("encoded again instead of reading the cache")


def test_a_new_process_reads_the_name_embeddings_from_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(nearest_names, "CACHE_DIR", tmp_path)
    nearest_names._name_vectors.cache_clear()
    names, vectors = nearest_names.name_vectors("task", "hash:256")
    assert len(names) > 1000 and vectors.shape == (len(names), 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npy"]  # no partial file left behind

    nearest_names._name_vectors.cache_clear()  # as in a fresh process
    monkeypatch.setattr(nearest_names, "get_encoder", lambda name: Refuses())
    again_names, again = nearest_names.name_vectors("task", "hash:256")
    assert again_names == names and np.array_equal(again, vectors)
    nearest_names._name_vectors.cache_clear()
