from django.core.management.base import BaseCommand
from tqdm import tqdm

from search import concepts, services


class Command(BaseCommand):
    help = ("Find task and dataset names in the papers stored before the current concept "
            "dictionary (data/taxonomy/), then recount them. The periodic job does the same "
            "every 10 minutes; this is for right after editing the dictionary.")

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, no_progress: bool, **options):
        outdated = services.papers_outdated_concepts_count()
        version = concepts.shipped_dictionary().version
        with tqdm(total=outdated, unit="paper", desc=f"concepts {version}",
                  disable=no_progress or outdated == 0) as bar:
            updated = services.papers_refresh_concepts(progress=bar.update)
        stats = services.concept_stats_fit()
        self.stdout.write(f"{updated} papers updated; {stats}")
