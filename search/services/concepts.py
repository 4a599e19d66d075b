"""Named concepts (search.concepts) on stored papers: refreshing papers found under an older
dictionary, and the per-concept paper counts (idf)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection, transaction

from search import concepts
from search.models import ConceptStats, Paper

CONCEPT_BATCH = 1000
CONCEPT_STATS_KEEP = 3


def papers_refresh_concepts(*, batch: int = CONCEPT_BATCH,
                            progress: Callable[[int], None] | None = None) -> int:
    """Find the concepts of every paper whose concepts came from another dictionary version
    (or from none: papers stored before concepts existed). Idempotent and restartable: each
    batch commits on its own, and a paper whose text changed meanwhile is left to the next
    run (the write is conditional on the text it was computed from). Returns papers written."""
    version = concepts.shipped_dictionary().version
    updated, last_id = 0, 0
    while True:
        rows = list(Paper.objects.filter(pk__gt=last_id).exclude(concepts_version=version)
                    .order_by("pk").values_list("pk", "title", "abstract", "content_hash")[:batch])
        if not rows:
            return updated
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE search_paper SET concepts = %s::varchar[], concepts_version = %s "
                "WHERE id = %s AND content_hash = %s",
                [(*concepts.found_in(title, abstract), pk, digest)
                 for pk, title, abstract, digest in rows])
            updated += max(cursor.rowcount, 0)  # psycopg 3: the sum over the statements
        last_id = rows[-1][0]
        if progress:
            progress(len(rows))


def papers_outdated_concepts_count() -> int:
    return Paper.objects.exclude(concepts_version=concepts.shipped_dictionary().version).count()


def concept_stats_needed() -> bool:
    """No count yet, a new dictionary, or the corpus has grown by a tenth since the last count."""
    latest = ConceptStats.objects.only("dictionary_version", "papers").first()
    corpus = Paper.objects.count()
    if latest is None:
        return corpus > 0
    return (latest.dictionary_version != concepts.shipped_dictionary().version
            or corpus > 1.1 * latest.papers)


def concept_stats_fit() -> ConceptStats:
    """Count the papers naming each concept (one pass over the table), keep the newest few."""
    version = concepts.shipped_dictionary().version
    with connection.cursor() as cursor:
        cursor.execute("SELECT c, count(*) FROM search_paper p, unnest(p.concepts) AS c "
                       "WHERE p.concepts_version = %s GROUP BY c", [version])
        frequencies = {str(c): int(n) for c, n in cursor.fetchall()}
    papers = Paper.objects.filter(concepts_version=version).count()
    stats = ConceptStats.objects.create(dictionary_version=version, papers=papers,
                                        frequencies=frequencies)
    keep = ConceptStats.objects.values_list("pk", flat=True)[:CONCEPT_STATS_KEEP]
    ConceptStats.objects.exclude(pk__in=list(keep)).delete()
    return stats



def concepts_refresh(*, recount: bool = False) -> tuple[int, ConceptStats | None]:
    """The periodic job (and the admin action, with `recount`): concepts for papers stored
    under another dictionary, then the counts when something changed, they are due or asked
    for. Returns (papers written, the new counts or None)."""
    updated = papers_refresh_concepts()
    if recount or updated or concept_stats_needed():
        return updated, concept_stats_fit()
    return updated, None
