"""Background work of the recommend app: thin wrappers over recommend.lexical."""

from __future__ import annotations

import logging

from celery import shared_task

from recommend import lexical

log = logging.getLogger(__name__)


@shared_task(max_retries=0)
def fit_lexical_if_needed() -> str | None:
    """Fit the tf-idf vocabulary when there is none yet or the corpus has doubled."""
    if not lexical.needs_fit():
        return None
    model = lexical.fit_model()
    if model is not None:
        log.info("lexical rerank: fitted %s", model)
    return model.version if model else None
