"""What the benchmarks on the loaded (demo) corpus share: their options and their frame."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from bench.common import machine, write_json


def add_demo_arguments(parser):
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--seed", type=int, default=7)


def run_on_demo(command, measure, options):
    """Refuse an empty database, print the machine line, measure, write --json."""
    from search.models import Paper

    if not Paper.objects.exists():
        raise CommandError("no papers loaded: run `make run` once (or manage.py ingest data/demo)")
    command.stdout.write(f"machine: {machine()}")
    results = measure(command.stdout.write, **options)
    write_json(options.get("json"), results)
