from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from search.ingest import count_rows
from search.services import IngestReport, announce_corpus_changed, papers_ingest_file


class Command(BaseCommand):
    help = ("Ingest papers from arXiv daily JSONL(.gz), the Kaggle arXiv snapshot, or "
            "Paperscope JSONL. Bad rows are reported with file and line; good rows go in.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, paths, no_progress, **options):
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise CommandError(f"no such file: {', '.join(missing)}")
        total = IngestReport()
        for path in paths:
            rows = count_rows(path) if not no_progress else 0
            with tqdm(total=rows, desc=path.name, unit="row", disable=no_progress or rows < 1000,
                      leave=False) as bar:

                def progress(r: IngestReport, bar: tqdm = bar) -> None:
                    bar.update(r.rows - bar.n)

                report = papers_ingest_file(path=path, on_progress=progress)
            for error in report.errors:
                self.stderr.write(f"{error['file']}:{error['line']}: {error['message']}")
            if report.error_count > len(report.errors):
                self.stderr.write(f"... and {report.error_count - len(report.errors)} more errors")
            for name in ("rows", "created", "updated", "unchanged", "error_count"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
        if total.created or total.updated:
            announce_corpus_changed()
        self.stdout.write(
            f"{total.rows} rows: {total.created} new, {total.updated} updated, "
            f"{total.unchanged} unchanged, {total.error_count} rejected"
        )
