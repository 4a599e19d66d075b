"""Embedding spaces: one per model and aspect, created on first use, switched on once complete."""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F

from search.embedders import get_encoder
from search.models import EmbeddingSpace, Paper, PaperEmbedding
from search.services.indexes import space_ensure_indexes

log = logging.getLogger(__name__)


def space_for_model(*, model_name: str | None = None, aspect: str = "generic") -> EmbeddingSpace:
    """The space of the configured model for `aspect`, created (and indexed) on first use.

    The first space of an aspect becomes active at once; a later one (a new model, or a new
    version of the aspect method) is filled in the background and switched on by
    `space_activate_when_complete`.
    """
    encoder = get_encoder(model_name)
    version = encoder.version
    if aspect != "generic":
        from search.aspect_vectors import method_version

        version = f"{encoder.version}+{method_version(encoder)}"
    space = EmbeddingSpace.objects.filter(
        model_name=encoder.name, model_version=version, aspect=aspect).first()
    if space is None:
        slug_model = encoder.name.replace(":", "-").replace("/", "-").lower()
        with transaction.atomic():
            has_active = EmbeddingSpace.objects.filter(aspect=aspect, is_active=True).exists()
            space, _ = EmbeddingSpace.objects.get_or_create(
                model_name=encoder.name, model_version=version, aspect=aspect,
                defaults={"name": f"{slug_model}-{_short_hash(version)}-{aspect}",
                          "dimension": encoder.dimension, "is_active": not has_active},
            )
        space_ensure_indexes(space=space)
    return space


def configured_spaces() -> list[EmbeddingSpace]:
    """The generic space and one per configured aspect, for the configured model."""
    return [space_for_model(aspect=aspect) for aspect in ("generic", *settings.ASPECTS)]


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def space_activate_when_complete(*, aspect: str = "generic") -> EmbeddingSpace | None:
    """Switch the aspect to the configured space once every paper has a vector there, unless
    an operator chose the active space in the model registry (search.operations.registry):
    the sweep must not undo a rollback."""
    from search.operations.registry import is_pinned

    target = space_for_model(aspect=aspect)
    if target.is_active or is_pinned(aspect):
        return target if target.is_active else None
    if papers_missing_embedding_ids(space=target, limit=1):
        return None
    with transaction.atomic():
        EmbeddingSpace.objects.filter(aspect=aspect, is_active=True).update(is_active=False)
        EmbeddingSpace.objects.filter(pk=target.pk).update(is_active=True)
    log.info("activated embedding space %s", target.name)
    return target


def papers_missing_embedding_ids(*, space: EmbeddingSpace, limit: int | None = None) -> list[int]:
    """Papers with no vector in `space`, or one computed from older text."""
    qs = (Paper.objects.exclude(pk__in=PaperEmbedding.objects.filter(
        space=space, content_hash=F("paper__content_hash")).values("paper_id"))
        .order_by("pk").values_list("pk", flat=True))
    return list(qs[:limit] if limit else qs)

