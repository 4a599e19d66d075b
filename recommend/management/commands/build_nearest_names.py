from django.conf import settings
from django.core.management.base import BaseCommand

from recommend import nearest_names


class Command(BaseCommand):
    help = ("Encode the dictionary's task names for the nearest-names signal of 'similar' and "
            "'recommend' (recommend.nearest_names) into var/cache/nearest-names/, unless they "
            "are there. The periodic job does this by itself; the Docker image runs it at build. "
            "Needs no database.")

    def add_arguments(self, parser):
        parser.add_argument("--model", action="append", dest="models",
                            help="encoder name (repeatable); default settings.EMBEDDING_MODEL")

    def handle(self, *args, models=None, **options):
        for model_name in models or [settings.EMBEDDING_MODEL]:
            for kind in nearest_names.KINDS:
                path = nearest_names.build(kind, model_name)
                self.stdout.write(f"{model_name} {kind}: {path}")
