"""`bench scale-load` COPYs papers straight into the tables: it must keep up with the schema
(migration search 0008 added NOT NULL concept columns and the COPY failed on them)."""

from datetime import date

import numpy as np
import pytest
from django.db import connection

from bench.scale_load import EMBEDDING_COLUMNS, PAPER_COLUMNS, copy_papers
from search.embedders import content_hash
from search.models import EmbeddingSpace, Paper, PaperEmbedding

pytestmark = pytest.mark.django_db


def required_columns(table: str) -> set[str]:
    """NOT NULL columns that get no value unless the writer gives one (no default, not generated)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                       " AND is_nullable = 'NO' AND column_default IS NULL AND is_generated = 'NEVER'"
                       " AND is_identity = 'NO'"
                       " AND data_type <> 'jsonb'", [table])  # the loader fills jsonb ones itself
        return {row[0] for row in cursor.fetchall()}


def test_the_loader_writes_every_required_column_of_papers_and_vectors():
    assert required_columns("search_paper") <= set(PAPER_COLUMNS)
    assert required_columns("search_paperembedding") <= set(EMBEDDING_COLUMNS)


def test_the_loader_copies_papers_and_their_vectors_into_the_migrated_schema():
    space = EmbeddingSpace.objects.create(name="bench-copy", model_name="reference", model_version="npz",
                                          dimension=8, aspect="generic", is_active=True)
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [(pid, f"2501.0000{pid}", f"https://arxiv.org/abs/2501.0000{pid}", f"Title {pid}",
             f"Abstract {pid}", ["A. Author"], ["cs.CL"], date(2025, 1, pid),
             content_hash(f"Title {pid}", f"Abstract {pid}"))
            for pid in (1, 2, 3)]

    copy_papers(rows, vectors, space)

    papers = list(Paper.objects.order_by("pk"))
    assert [p.arxiv_id for p in papers] == ["2501.00001", "2501.00002", "2501.00003"]
    assert papers[1].concepts == [] and papers[1].concepts_version == ""
    stored = PaperEmbedding.objects.get(paper_id=2, space=space)
    assert np.allclose(np.asarray(stored.embedding), vectors[1], atol=1e-6)
