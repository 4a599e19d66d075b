"""`python manage.py bench <name>`: the one entry point of every benchmark and evaluation.

Each benchmark is a module of the bench app with HELP (one line), add_arguments(parser) and
run(command, **options); `bench --help` lists them, `bench <name> --help` shows the module's
description and options. bench/README.md maps them to the sections of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
from importlib import import_module

from django.core.management.base import BaseCommand

# name -> module (in the order of docs/benchmarks.md)
BENCHMARKS = {
    "embed": "bench.embed",
    "pipeline": "bench.pipeline",
    "search": "bench.search_latency",
    "modes": "bench.modes",
    "similar": "bench.similar",
    "e2e": "bench.e2e",
    "scale-load": "bench.scale_load",
    "filtered": "bench.filtered",
    "precision": "bench.precision",
    "graph": "bench.graph",
    "compact-codes": "bench.compact_codes",
    "aspects-adapters": "bench.aspects_adapters",
    "aspects": "bench.aspects",
    "aspects-facets": "bench.aspects_facets",
    "aspects-recommend": "bench.aspects_recommend",
    "roles": "bench.roles",
    "fde": "bench.fde",
    "digest": "bench.digest",
    "encoders": "bench.encoders_cpu",
    "onnx-aspects": "bench.onnx_aspects",
    "dashboard": "bench.dashboard",
    "feed": "bench.feed",
}


class Command(BaseCommand):
    help = "Benchmarks and evaluations (numbers for docs/benchmarks.md): bench <name> [options]."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="benchmark", required=True, metavar="<name>",
                                    title="benchmarks")
        for name, path in BENCHMARKS.items():
            module = import_module(path)
            child = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
            module.add_arguments(child)

    def handle(self, *args, benchmark, **options):
        # models load from local files only: there is no hub access here (nor on many servers)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import_module(BENCHMARKS[benchmark]).run(self, **options)
