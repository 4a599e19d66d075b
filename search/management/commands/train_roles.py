from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from search import role_training


class Command(BaseCommand):
    help = ("Train the sentence-role classifier (background / objective / method / result / "
            "other) on CSAbstruct: options chosen on its dev split, fitted on train, written "
            "to settings.SENTENCE_ROLES (np.savez, versioned). Minutes on a CPU. The sweep then "
            "relabels every paper's sentences with the new version.")

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=role_training.DEFAULT_DATA,
                            help="folder with CSAbstruct's {train,dev,test}.jsonl.gz")
        parser.add_argument("--out", type=Path, default=None,
                            help=f"artifact path (default {settings.SENTENCE_ROLES})")

    def handle(self, *args, data: Path, out: Path | None, **options):
        if not (data / "train.jsonl.gz").exists():
            raise CommandError(f"no CSAbstruct train split in {data}")
        result = role_training.train(data=data, out=out, progress=self.stdout.write)
        chosen = result["chosen"]
        self.stdout.write(self.style.SUCCESS(
            f"{result['version']}: dev macro-F1 {chosen['dev_macro_f1']:.3f}, accuracy "
            f"{chosen['dev_accuracy']:.3f} ({result['cpu_seconds']} CPU-s)"))
