"""Benchmarks and evaluations: `python manage.py bench <name>` (bench/README.md).

A development app: project/settings.py installs it only with DEBUG on or BENCH_APP=1, and no
app imports it (the dependency rule is bench -> apps, never the reverse).
"""
