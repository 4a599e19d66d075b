from django.core.management.base import BaseCommand

from search import services


class Command(BaseCommand):
    help = "Queue embedding tasks for papers without a current vector (or embed here with --now)."

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true",
                            help="embed in this process instead of queueing Celery tasks")

    def handle(self, *args, now, **options):
        space = services.space_for_model()
        ids = services.papers_missing_embedding_ids(space=space)
        if not ids:
            self.stdout.write(f"all papers have a current vector in {space.name}")
            services.space_activate_when_complete()
            return
        if now:
            from tqdm import tqdm

            chunk = 64
            with tqdm(total=len(ids), unit="paper", desc="embedding") as bar:
                for start in range(0, len(ids), chunk):
                    services.papers_embed(paper_ids=ids[start:start + chunk], space=space)
                    bar.update(len(ids[start:start + chunk]))
            services.space_activate_when_complete()
            return
        # Same path as the periodic task: nothing is queued while earlier tasks are pending.
        from search.tasks import embed_missing

        queued = embed_missing()
        self.stdout.write(f"queued {queued} of {len(ids)} papers lacking a vector in {space.name}"
                          + ("" if queued else " (embedding tasks are already queued)"))
