from django.core.management.base import BaseCommand, CommandError

from recommend import lexical


class Command(BaseCommand):
    help = ("Fit the tf-idf vocabulary of the lexical rerank on the corpus (the periodic job "
            "does this by itself once there are enough papers, and again when the corpus has "
            "doubled).")

    def handle(self, *args, **options):
        model = lexical.fit_model()
        if model is None:
            raise CommandError(f"the corpus has fewer than {lexical.FIT_MIN} papers: nothing "
                               "worth fitting yet")
        self.stdout.write(f"{model}: version {model.version}")
