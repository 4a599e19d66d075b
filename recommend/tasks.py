"""Background work of the recommend app: thin wrappers over recommend.lexical and
recommend.nearest_names."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from recommend import lexical, nearest_names
from search.models import EmbeddingSpace

log = logging.getLogger(__name__)


@shared_task(max_retries=0)
def fit_lexical_if_needed() -> str | None:
    """Fit the tf-idf vocabulary when there is none yet or the corpus has doubled."""
    if not lexical.needs_fit():
        return None
    return fit_lexical()


@shared_task(max_retries=0)
def fit_lexical() -> str | None:
    """Fit the tf-idf vocabulary now (the admin's "fit now"); None when the corpus is too small."""
    model = lexical.fit_model()
    if model is not None:
        log.info("lexical rerank: fitted %s", model)
    return model.version if model else None


def models_in_use() -> list[str]:
    """The configured encoder and those of the active generic spaces (a switch in progress
    may leave them apart): the models whose vectors requests compare with the names."""
    active = EmbeddingSpace.objects.filter(aspect="generic", is_active=True)
    return sorted({settings.EMBEDDING_MODEL, *active.values_list("model_name", flat=True)})


@shared_task(max_retries=0)
def build_nearest_names() -> list[str]:
    """Build the names' embeddings of recommend.nearest_names that are missing (a new model,
    a new dictionary version, a fresh checkout): the beat entry "build-nearest-names" runs it,
    so requests never encode them. Returns the files written or found."""
    built = []
    for model_name in models_in_use():
        for kind in nearest_names.KINDS:
            path = nearest_names.build(kind, model_name)
            log.info("nearest names: %s (%s, %s)", path.name, kind, model_name)
            built.append(str(path))
    return built
