"""Aspect spaces keep only the HNSW graphs of settings.ASPECT_INDEX_PRECISIONS (default
halfvec): the float and bit graphs of task / method / dataset were walked by nothing in the
default configuration and cost every new paper six index inserts (`bench pipeline`,
docs/benchmarks.md). A precision without its graph is served by one that has one
(search.planner.served_precision).

Safe on a populated database: it only drops indexes (DROP INDEX CONCURRENTLY, no table
rewrite, readers are not blocked); no row changes. Reversing rebuilds the dropped graphs
(minutes at 74.7k papers).
"""

from django.conf import settings
from django.db import migrations

GRAPHS = {"float": "float", "halfvec": "half", "binary": "bit"}


def _unwanted(apps):
    space_model = apps.get_model("search", "EmbeddingSpace")
    keep = set(settings.ASPECT_INDEX_PRECISIONS)
    for space in space_model.objects.exclude(aspect="generic"):
        for precision, suffix in GRAPHS.items():
            if precision not in keep:
                yield space, precision, f"emb_s{int(space.pk)}_{suffix}_hnsw"


def drop_unwalked_graphs(apps, schema_editor):
    for _, _, name in _unwanted(apps):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def rebuild_graphs(apps, schema_editor):
    ops = {"float": ("embedding", "vector", "vector_cosine_ops"),
           "binary": ("embedding_bit", "bit", "bit_hamming_ops"),
           "halfvec": ("embedding_half", "halfvec", "halfvec_cosine_ops")}
    for space, precision, name in _unwanted(apps):
        column, cast, opclass = ops[precision]
        dim, sid = int(space.dimension), int(space.pk)
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON search_paperembedding USING hnsw "
            f"(({column}::{cast}({dim})) {opclass}) WHERE space_id = {sid}")


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("search", "0011_operations"),
    ]

    operations = [migrations.RunPython(drop_unwalked_graphs, rebuild_graphs)]
