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


# --- the reader's loop -----------------------------------------------------------------------

def queue_training(*, user_id: int, library_id: int | None) -> None:
    """After a change: retrain that library's model and the reader's (a library's papers are
    the reader's positives too); a ratings change (library_id None) touches every library of
    the reader (their thumbs-down are the libraries' negatives). A model already current
    costs a version check. A broker that is down loses nothing: the beat sweep retrains."""
    from recommend.models import Library

    ids = [library_id] if library_id else list(
        Library.objects.filter(owner_id=user_id).values_list("pk", flat=True))
    try:
        for pk in [*ids, None]:
            # a short countdown folds a burst of clicks into (mostly) one training
            train_reader_model.apply_async(kwargs={"user_id": user_id, "library_id": pk}, countdown=2)
    except Exception as error:  # the broker is down: the sweep will find the stale models
        log.warning("reader models of user %s not queued (%s); the sweep retrains them", user_id, error)


@shared_task(max_retries=0)
def train_reader_model(*, user_id: int, library_id: int | None) -> str | None:
    """Train one library's (or the reader's) ranking model if it is not current."""
    from django.core.cache import cache

    from recommend import training
    from recommend.models import Library

    library = Library.objects.filter(pk=library_id).first() if library_id else None
    if library_id and library is None:
        return None  # deleted meanwhile
    lock = f"reader-model-training:{user_id}:{library_id}"
    if not cache.add(lock, 1, timeout=300):
        # another worker is training it; our change is picked up by the sweep if it missed it
        return "busy"
    try:
        row = training.train(user_id, library)
    finally:
        cache.delete(lock)
    return row.version if row else None


@shared_task(max_retries=0)
def train_stale_reader_models() -> int:
    from recommend import training

    stale = training.stale_subjects()
    for user_id, library_id in stale:
        train_reader_model.delay(user_id=user_id, library_id=library_id)
    return len(stale)


@shared_task(max_retries=0)
def send_due_digests() -> int:
    """Queue the digest of every reader whose period has ended (recommend.digests)."""
    from recommend import digests

    due = digests.due_readers()
    for user_id, period in due:
        send_digest.delay(user_id=user_id, period=period)
    return len(due)


@shared_task(bind=True, max_retries=3, default_retry_delay=120)
def send_digest(self, *, user_id: int, period: str) -> str:
    """Compose (once) and send (once) a reader's digest of `period`; a failed SMTP delivery is
    retried with the same items."""
    from recommend import digests

    try:
        return digests.send(user_id=user_id, period=period)
    except digests.DeliveryFailed as error:
        raise self.retry(exc=error) from None
