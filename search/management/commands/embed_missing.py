from django.conf import settings
from django.core.management.base import BaseCommand

from search import services


class Command(BaseCommand):
    help = ("Queue embedding tasks for papers without a current vector in each configured "
            "space (or embed here with --now).")

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true",
                            help="embed in this process instead of queueing Celery tasks")

    def handle(self, *args, now, **options):
        spaces = services.configured_spaces()
        missing = {s.pk: services.papers_missing_embedding_ids(space=s) for s in spaces}
        if not any(missing.values()):
            self.stdout.write("every paper has a current vector in every space")
            for space in spaces:
                services.space_activate_when_complete(aspect=space.aspect)
            return
        if now:
            from tqdm import tqdm

            ids = sorted(set().union(*map(set, missing.values())))
            chunk = settings.EMBEDDING_TASK_CHUNK
            with tqdm(total=len(ids), unit="paper", desc="embedding") as bar:
                for start in range(0, len(ids), chunk):
                    services.papers_embed(paper_ids=ids[start:start + chunk], spaces=spaces)
                    bar.update(len(ids[start:start + chunk]))
            for space in spaces:
                services.space_activate_when_complete(aspect=space.aspect)
            return
        # Same path as the periodic task: nothing is queued while earlier tasks are pending.
        from search.tasks import embed_missing

        queued = embed_missing()
        self.stdout.write(f"queued {queued} paper-space pairs"
                          + ("" if queued else " (embedding tasks are already queued)"))
