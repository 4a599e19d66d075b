from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from search import services
from search.models import EmbeddingSpace


def _bar_progress(bars: dict[str, tqdm], label: str) -> Callable[[str, int, int], None]:
    """An on_progress callback drawing one tqdm bar per phase (kept in `bars`, to close)."""

    def progress(phase: str, done: int, total: int) -> None:
        if total == 0 and phase not in bars:
            return  # nothing to do in this phase: no empty bar
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=f"{label}: {phase}",
                                     unit="row")
        bar.total = max(total, 1)
        bar.n = done
        bar.refresh()

    return progress


class Command(BaseCommand):
    help = ("Fit the ternary code of embedding spaces (search.codes), write every vector's code "
            "and build its HNSW index, with progress. Idempotent: resumes where it stopped.")

    def add_arguments(self, parser):
        parser.add_argument("--space", action="append", default=[],
                            help="space name (repeatable); default: the configured spaces")
        parser.add_argument("--refit", action="store_true",
                            help="fit the thresholds again and rewrite every code")

    def handle(self, *args, space, refit, **options):
        if space:
            spaces = list(EmbeddingSpace.objects.filter(name__in=space))
            unknown = set(space) - {s.name for s in spaces}
            if unknown:
                names = ", ".join(EmbeddingSpace.objects.values_list("name", flat=True))
                raise CommandError(f"unknown space(s) {', '.join(sorted(unknown))}; "
                                   f"spaces: {names or 'none yet'}")
        else:
            spaces = services.configured_spaces()
        for target in spaces:
            bars: dict[str, tqdm] = {}
            try:
                result = services.space_build_code(space=target, refit=refit,
                                                   on_progress=_bar_progress(bars, target.name))
            except ValueError as exc:
                self.stderr.write(f"{target.name}: {exc}")
                continue
            finally:
                for bar in bars.values():
                    bar.close()
            self.stdout.write(f"{target.name}: {result['encoded']} codes written, "
                              f"thresholds {result['code_version']}, index ready")
