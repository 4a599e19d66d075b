from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from search import concepts

HEADER = """\
# Task and dataset names for concept matching (search.concepts): kind<TAB>name, one per line.
# Source: the Papers with Code task taxonomy (task lists, hierarchies, common datasets and
# benchmarks per task), CC BY-SA 4.0, as exported by the public GitHub project
# World-Snapshot/papers-with-code. This list of names is a derived work under the same license.
# Written by `python manage.py build_concepts --taxonomy <export folder>`; edit freely
# (add a line to teach Paperscope a name), then run `python manage.py refresh_concepts`.
"""


# Names in the taxonomy that are ordinary phrases, acronyms or metrics in abstracts rather than
# the task or dataset they name there: the most frequent dataset / task matches on the demo
# corpus (2025 arXiv cs.CV / cs.CL / cs.AI), read one by one. Leaving them out loses nothing
# measurable (`manage.py bench aspects`) and keeps "dataset: SOTA" off the paper pages.
GENERIC_NAMES = {
    ("dataset", "SOTA"), ("dataset", "AND Dataset"), ("dataset", "Social media"),
    ("dataset", "Real-world Dataset"), ("dataset", "Real-world Datasets"), ("dataset", "Video Dataset"),
    ("dataset", "FOR-instance"),
    ("dataset", "E-commerce"), ("dataset", "In-house"), ("dataset", "Medical domain"),
    ("dataset", "Among Them"), ("dataset", "Knowledge-based:"), ("dataset", "scientific_papers"),
    ("dataset", "CPU"), ("dataset", "PSNR"), ("dataset", "DSC (10 tasks)"), ("dataset", "SSL"),
    ("dataset", "CAD"),
    ("task", "Success Rate (5 task-horizon)"),
}


class Command(BaseCommand):
    help = ("Write the concept dictionary (data/taxonomy/pwc-concepts.tsv) from a Papers with "
            "Code taxonomy export, e.g. ../shared/data/pwc-taxonomy.")

    def add_arguments(self, parser):
        parser.add_argument("--taxonomy", required=True, type=Path)
        parser.add_argument("--out", type=Path, default=Path(settings.CONCEPT_DICTIONARY))

    def handle(self, *args, taxonomy: Path, out: Path, **options):
        if not taxonomy.is_dir():
            raise CommandError(f"{taxonomy} is not a folder")
        names = [pair for pair in concepts.read_taxonomy(taxonomy) if pair not in GENERIC_NAMES]
        if not names:
            raise CommandError(f"no task or dataset names found under {taxonomy}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(HEADER + "".join(f"{k}\t{n}\n" for k, n in names), encoding="utf-8")
        counts = {k: sum(1 for kind, _ in names if kind == k) for k in concepts.KINDS}
        version = concepts.read_dictionary(out).version
        self.stdout.write(f"wrote {out}: {counts['task']} tasks, {counts['dataset']} datasets "
                          f"(version {version})")
