"""`manage.py train_aspect_adapters` on a few labelled rows (tests/fixtures/aspects/, copied from
../shared/data) with the `hash:` encoder: the artifact it writes is one search.adapters serves."""

import numpy as np
import pytest
from django.core.management import call_command

from search import adapters
from search.embedders import get_encoder


@pytest.fixture
def trained(fixtures_dir, tmp_path, settings):
    out = tmp_path / "aspect-adapters.npz"
    settings.ASPECT_ADAPTERS = out
    call_command("train_aspect_adapters", data=fixtures_dir / "aspects", out=out, epochs=3)
    return out


def test_the_artifact_is_for_the_configured_encoders_model_and_applies_to_its_vectors(trained, settings):
    encoder = get_encoder(settings.EMBEDDING_MODEL)  # the tests' hash encoder
    artifact = adapters.current(encoder)
    assert artifact is not None, "search.adapters does not serve the artifact to the encoder it was trained for"
    assert sorted(artifact.adapters) == ["dataset", "task"]
    generic = encoder.encode(["Image classification on CIFAR-10", "Time series forecasting"])
    task = artifact.apply("task", generic)
    assert task.shape == generic.shape
    assert np.allclose(np.linalg.norm(task, axis=1), 1.0, atol=1e-5)
    assert 0.0 <= artifact.adapters["task"].alpha <= 1.0
    assert np.allclose(artifact.apply("method", generic), generic, atol=1e-6)  # no method adapter


def test_an_int8_export_trains_on_its_source_models_vectors(monkeypatch):
    """The default encoder is an int8 export: the trainer used to refuse it by name."""
    from bench.management.commands import train_aspect_adapters as command

    class Export:  # what search.onnx_encoder reports: its own name, its source model's key
        name, version, dimension, source_key = "onnx-int8:hash:16", "int8", 16, "hash:16@1"

    real = command.get_encoder
    monkeypatch.setattr(command, "get_encoder",
                        lambda name=None: Export() if name == "onnx-int8:hash:16" else real(name))
    key, encoder = command.training_encoder("onnx-int8:hash:16")
    assert key == "hash:16@1"
    assert encoder is real("hash:16")  # the source's exact vectors, not the export's
