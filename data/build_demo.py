#!/usr/bin/env python3
"""Rebuild the bundled demo corpus (data/demo/) from the arXiv daily crawl.

    python data/build_demo.py [SOURCE_DIR] [--month YYYY-MM] [--out DIR]

SOURCE_DIR holds one `YYYY-MM-DD.jsonl.gz` file per day (default: ../shared/data/arxiv-daily,
relative to the repository root). Papers repeat across days and even within a day, so every
file is scanned in name order and a paper counts only where its `id` is seen first. The papers
first seen in the chosen month (default 2025-04) are written, lines unchanged, to a gzipped file
named like the day they were first seen in, so the ingester can read the date from the name.
The crawler's licence file is copied along and the README is written with the counts.

Standard library only; the output is byte-for-byte reproducible (gzip mtime 0).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "data" / "arxiv-daily"
DEFAULT_OUT = REPO_ROOT / "data" / "demo"
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl\.gz$")
LICENSE_NAME = "LICENSE-crawler"

README = """\
# Demo corpus

{count:,} real arXiv papers (cs.CV, cs.CL, cs.AI and cross-lists) first listed between
{first} and {last}: every paper of the arXiv daily crawl whose first appearance falls in
{month}. One gzipped JSONL file per listing day (`YYYY-MM-DD.jsonl.gz`, {days} files); each
paper is only in the file of the day it was first seen, so the ingester reads that date from
the file name. Rows are unchanged from the crawl (arxiv-daily format):
`id`, `title`, `summary` (the abstract, with hard line wraps), `authors` (list), `categories`
(list, first = primary), `comment`, `abs`, `pdf`.

Load it with the ingest command, e.g. `python manage.py ingest data/demo/*.jsonl.gz`.

Regenerate with `python data/build_demo.py [path/to/arxiv-daily]` (standard library only;
the default source is `../shared/data/arxiv-daily` relative to the repository root).

## Source and license

- Paper metadata (titles, abstracts, authors, categories, links) from arXiv, whose metadata is
  released under CC0 1.0 (public domain dedication): https://arxiv.org/help/license
- Collected by the public GitHub project dw-dengwei/daily-arXiv-ai-enhanced; its license is
  copied beside this file as `LICENSE-crawler`.
- The papers themselves (PDFs, full text) are not included and stay under their authors'
  licenses.
"""


def first_seen(source: Path) -> tuple[dict[str, list[str]], int]:
    """Map day -> raw JSON lines of the papers first seen that day; also count all lines."""
    seen: set[str] = set()
    by_day: dict[str, list[str]] = defaultdict(list)
    total = 0
    files = sorted(p for p in source.iterdir() if DAY_FILE.match(p.name))
    if not files:
        raise SystemExit(f"no YYYY-MM-DD.jsonl.gz files in {source}")
    for path in files:
        day = DAY_FILE.match(path.name).group(1)
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                total += 1
                try:
                    row = json.loads(line)
                    paper_id = row["id"]
                except (json.JSONDecodeError, TypeError, KeyError) as exc:
                    print(f"{path.name}:{line_no}: skipped ({exc})", file=sys.stderr)
                    continue
                if paper_id in seen:
                    continue
                seen.add(paper_id)
                by_day[day].append(line)
    return by_day, total


def write_gzip(path: Path, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    with path.open("wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as handle:
        handle.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE,
                        help="folder of arxiv-daily YYYY-MM-DD.jsonl.gz files")
    parser.add_argument("--month", default="2025-04", help="first-seen month, YYYY-MM")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"\d{4}-\d{2}", args.month):
        parser.error("--month must look like YYYY-MM")
    source = args.source.resolve()
    out = args.out.resolve()

    by_day, total = first_seen(source)
    days = sorted(day for day in by_day if day.startswith(args.month + "-"))
    if not days:
        raise SystemExit(f"no paper first seen in {args.month}")

    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.jsonl.gz"):
        stale.unlink()
    count = 0
    for day in days:
        write_gzip(out / f"{day}.jsonl.gz", by_day[day])
        count += len(by_day[day])
    license_file = source / LICENSE_NAME
    if license_file.exists():
        shutil.copyfile(license_file, out / LICENSE_NAME)
    else:
        print(f"warning: {license_file} not found; {LICENSE_NAME} not copied", file=sys.stderr)
    (out / "README.md").write_text(
        README.format(count=count, first=days[0], last=days[-1], month=args.month,
                      days=len(days)),
        encoding="utf-8",
    )
    unique = sum(len(lines) for lines in by_day.values())
    print(f"{count} papers first seen in {args.month} ({len(days)} day files) -> {out} "
          f"[source: {total} lines, {unique} unique papers]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
