"""Writes to the corpus. The only code that creates papers or writes vectors.

Modules by concern: papers (upserts, file ingestion and its job), concepts (refresh and
counts), spaces (embedding-space life cycle), embedding (vector writes), codes (the ternary
code and its build job), indexes (building the vector indexes), jobs (the one job runner).
Every name below stays importable from search.services, as callers have always used it.
"""

from search.models import (  # noqa: F401 - re-exported (bench uses services.EmbeddingSpace)
    ConceptStats,
    EmbeddingSpace,
    Job,
    Paper,
    PaperCode,
    PaperEmbedding,
)
from search.services.codes import (  # noqa: F401 - re-exported
    CODE_BATCH,
    CODE_FIT_MIN,
    space_build_code,
    space_code_job_create,
    space_code_job_pending,
    space_code_job_run,
    space_code_thresholds,
    space_codes_incomplete,
)
from search.services.concepts import (  # noqa: F401 - re-exported
    CONCEPT_BATCH,
    CONCEPT_STATS_KEEP,
    concept_stats_fit,
    concept_stats_needed,
    concepts_refresh,
    papers_outdated_concepts_count,
    papers_refresh_concepts,
)
from search.services.embedding import (  # noqa: F401 - re-exported
    papers_embed,
    queue_embedding,
)
from search.services.indexes import (  # noqa: F401 - re-exported
    space_code_index_exists,
    space_drop_code_indexes,
    space_ensure_code_index,
    space_ensure_indexes,
    space_ensure_slice_indexes,
    space_frequent_slices,
    space_slice_indexes_missing,
)
from search.services.jobs import (  # noqa: F401 - re-exported
    JobFailed,
    fail_stale_jobs,
    job_queue,
    job_run,
    job_to_run,
    recover_stalled_jobs,
)
from search.services.papers import (  # noqa: F401 - re-exported
    INGEST_BATCH,
    MAX_JOB_ERRORS,
    IngestReport,
    UpsertResult,
    announce_corpus_changed,
    ingest_job_create,
    ingest_job_from_upload,
    ingest_job_run,
    papers_ingest_file,
    papers_upsert,
)
from search.services.spaces import (  # noqa: F401 - re-exported
    configured_spaces,
    papers_missing_embedding_ids,
    space_activate_when_complete,
    space_for_model,
)
