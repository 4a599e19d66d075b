"""Reading paper files: three formats in, one `PaperRecord` out, errors with line numbers.

Formats (detected per row, so a file may even mix them):
- arXiv daily crawl JSONL (`id`, `title`, `summary`, `authors` list, `categories` list, `abs`);
  the first-seen date comes from a `YYYY-MM-DD` in the file name;
- the Kaggle arXiv metadata snapshot (`id`, `abstract`, `authors` string, `categories`
  space-separated, `doi`, `journal-ref`, `versions`, `update_date`);
- Paperscope's own JSONL schema (docs/ingest-format.md): `title`, `abstract` and at least one of
  `arxiv_id` / `doi` / `url`; optional `authors`, `categories`, `venue`, `published`, `tasks`,
  `methods`, `datasets`.
Files may be gzipped (`.gz`). This module only parses; search.services writes.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO

from search.links import safe_link

_WS = re.compile(r"\s+")
_ARXIV_ID = re.compile(r"^(?:arxiv:)?([a-z\-]+(?:\.[A-Z]{2})?/\d{7}|\d{4}\.\d{4,5})(?:v\d+)?$", re.I)
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
MAX_TITLE = 2000
MAX_ABSTRACT = 20000


class RowError(ValueError):
    """A row that cannot become a paper; the message is shown to the user."""


@dataclass
class PaperRecord:
    title: str
    abstract: str
    arxiv_id: str | None = None
    doi: str | None = None
    source_url: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    venue: str = ""
    published: date | None = None
    first_seen: date | None = None
    tasks: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)


@dataclass
class ParsedRow:
    line: int
    record: PaperRecord | None = None
    error: str | None = None


# A line longer than this is reported and skipped without being held in memory whole.
MAX_LINE_BYTES = 1 << 20
MAX_LIST_ITEMS = 2000  # authors, categories, labels of one paper


def open_binary(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw  # type: ignore[return-value]


def count_rows(path: Path) -> int:
    """Non-blank lines, for a progress bar: never raises on a damaged file (counts what it can
    read; the ingestion itself reports the damage with its line number)."""
    count = 0
    try:
        with open_binary(path) as handle:
            for _, raw in _lines(handle):
                count += raw is None or bool(raw.strip())  # (None: a long line, one row)
    except (OSError, EOFError, gzip.BadGzipFile):
        pass
    return count


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per physical line; None for a line over MAX_LINE_BYTES, whose
    rest is skipped in chunks."""
    line_no = 0
    while True:
        chunk = handle.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        line_no += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = handle.readline(MAX_LINE_BYTES)
            yield line_no, None
            continue
        yield line_no, chunk


def read_rows(path: Path, *, file_date: date | None = None) -> Iterator[ParsedRow]:
    """Yield every non-blank line of `path` as a record or an error; never raises on bad rows.

    Each line is decoded on its own, so one bad line costs that line only. A paper that
    appears twice in one file is taken from its first line; later lines with the same id are
    reported ("duplicate of line N") and skipped, so a re-import of the file finds every
    paper unchanged.
    """
    if file_date is None:
        file_date = date_from_name(path.name)
    first_line_of: dict[str, int] = {}
    line_no = 0
    with open_binary(path) as handle:
        lines = _lines(handle)
        while True:
            try:
                line_no, raw = next(lines, (line_no, b""))
            except (OSError, EOFError, gzip.BadGzipFile) as exc:  # truncated gzip and the like
                yield ParsedRow(line_no + 1, error=f"cannot read the file past this line: {exc}")
                return
            if raw == b"":
                return
            parsed = _parse_line(line_no, raw, file_date)
            if parsed is None:
                continue
            if parsed.record is not None:
                keys = identity_keys(parsed.record)
                seen = next((first_line_of[k] for k in keys if k in first_line_of), None)
                if seen is not None:
                    yield ParsedRow(line_no, error=f"duplicate of line {seen} (same id); "
                                                   "the first one is kept")
                    continue
                for key in keys:
                    first_line_of[key] = line_no
            yield parsed


def _parse_line(line_no: int, raw: bytes | None, file_date: date | None) -> ParsedRow | None:
    if raw is None:
        return ParsedRow(line_no, error=f"line is longer than {MAX_LINE_BYTES >> 20} MiB")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParsedRow(line_no, error=f"not valid UTF-8 (byte {exc.start + 1})")
    if not line.strip():
        return None
    if "\x00" in line or "\\u0000" in line:  # Postgres text cannot hold one
        return ParsedRow(line_no, error="contains a NUL character (\\u0000)")
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return ParsedRow(line_no, error=f"invalid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return ParsedRow(line_no, error="JSON nested too deeply")
    try:
        return ParsedRow(line_no, record=parse_row(row, file_date=file_date))
    except RowError as exc:
        return ParsedRow(line_no, error=str(exc))


def identity_keys(record: PaperRecord) -> list[str]:
    """The ids that recognise a paper on re-import (as the upsert matches them)."""
    return [k for k in (record.arxiv_id and f"a:{record.arxiv_id}", record.doi and
                        f"d:{record.doi}", record.source_url and f"u:{record.source_url}") if k]


def date_from_name(name: str) -> date | None:
    match = _DATE_IN_NAME.search(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def parse_row(row: object, *, file_date: date | None = None) -> PaperRecord:
    if not isinstance(row, dict):
        raise RowError("expected a JSON object")
    if "summary" in row and "id" in row:
        return _from_arxiv_daily(row, file_date)
    if "abstract" in row and "id" in row and ("versions" in row or "update_date" in row):
        return _from_kaggle(row)
    return _from_own_schema(row)


# --- the three formats -----------------------------------------------------------------------

def _from_arxiv_daily(row: dict, file_date: date | None) -> PaperRecord:
    arxiv_id = normalize_arxiv_id(row.get("id"))
    return PaperRecord(
        title=_text(row, "title", MAX_TITLE),
        abstract=_text(row, "summary", MAX_ABSTRACT),
        arxiv_id=arxiv_id,
        # the listing's own link when it is a web link, else the canonical one from the id
        source_url=safe_link(row.get("abs"))[:500] or f"https://arxiv.org/abs/{arxiv_id}",
        authors=_str_list(row.get("authors"), "authors"),
        categories=_str_list(row.get("categories"), "categories"),
        # the listing date is the publication date unless an earlier listing is known
        first_seen=file_date,
    )


def _from_kaggle(row: dict) -> PaperRecord:
    arxiv_id = normalize_arxiv_id(row.get("id"))
    published = None
    versions = row.get("versions") or []
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        try:
            published = parsedate_to_datetime(versions[0].get("created", "")).date()
        except (TypeError, ValueError):
            published = None
    if published is None and row.get("update_date"):
        published = _date(row["update_date"], "update_date")
    authors_parsed = row.get("authors_parsed")
    if isinstance(authors_parsed, list) and authors_parsed:
        authors = [
            _WS.sub(" ", f"{parts[1]} {parts[0]}").strip()
            for parts in authors_parsed if isinstance(parts, list) and len(parts) >= 2
        ]
    else:
        authors = _split_authors(str(row.get("authors") or ""))
    categories = str(row.get("categories") or "").split()
    return PaperRecord(
        title=_text(row, "title", MAX_TITLE),
        abstract=_text(row, "abstract", MAX_ABSTRACT),
        arxiv_id=arxiv_id,
        doi=normalize_doi(row.get("doi")),
        source_url=f"https://arxiv.org/abs/{arxiv_id}",
        authors=authors,
        categories=categories,
        venue=_clean(row.get("journal-ref") or "")[:500],
        published=published,
    )


def _from_own_schema(row: dict) -> PaperRecord:
    unknown = set(row) - {
        "arxiv_id", "doi", "url", "title", "abstract", "authors", "categories", "venue",
        "published", "tasks", "methods", "datasets",
    }
    if unknown:
        raise RowError(f"unknown field(s): {', '.join(sorted(unknown))}")
    arxiv_id = normalize_arxiv_id(row["arxiv_id"]) if row.get("arxiv_id") else None
    doi = normalize_doi(row.get("doi"))
    url = str(row.get("url") or "").strip()
    if url and not safe_link(url):
        raise RowError("url must be an absolute http:// or https:// link without spaces")
    if not (arxiv_id or doi or url):
        raise RowError("needs at least one of arxiv_id, doi, url (to recognise it on re-import)")
    authors = row.get("authors") or []
    return PaperRecord(
        title=_text(row, "title", MAX_TITLE),
        abstract=_text(row, "abstract", MAX_ABSTRACT),
        arxiv_id=arxiv_id,
        doi=doi,
        source_url=url[:500] or (f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else ""),
        authors=_split_authors(authors) if isinstance(authors, str) else _str_list(authors, "authors"),
        categories=_str_list(row.get("categories") or [], "categories"),
        venue=_clean(row.get("venue") or "")[:500],
        published=_date(row["published"], "published") if row.get("published") else None,
        tasks=_str_list(row.get("tasks") or [], "tasks"),
        methods=_str_list(row.get("methods") or [], "methods"),
        datasets=_str_list(row.get("datasets") or [], "datasets"),
    )


# --- field helpers ----------------------------------------------------------------------------

def normalize_arxiv_id(value: object) -> str:
    text = str(value or "").strip()
    match = _ARXIV_ID.match(text)
    if not match:
        raise RowError(f"not an arXiv id: {text[:40]!r}")
    return match.group(1)


def normalize_doi(value: object) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    text = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", text, flags=re.I).split()[0]
    if not _DOI.match(text):
        raise RowError(f"not a DOI: {text[:60]!r}")
    return text.lower()


def _clean(value: object) -> str:
    return _WS.sub(" ", str(value)).strip()


def _text(row: dict, key: str, limit: int) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"missing or empty {key!r}")
    text = _clean(value)
    if len(text) > limit:
        raise RowError(f"{key!r} is longer than {limit} characters")
    return text


def _str_list(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(f"{key!r} must be a list of strings")
    if len(value) > MAX_LIST_ITEMS:
        raise RowError(f"{key!r} has {len(value)} entries; at most {MAX_LIST_ITEMS}")
    seen: dict[str, None] = {}
    for item in value:
        cleaned = _clean(item)[:200]
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def _split_authors(text: str) -> list[str]:
    text = _clean(text.replace("\\'", "'"))
    parts = re.split(r",\s*|\s+and\s+", text)
    return [p for p in (_clean(p) for p in parts) if p]


DATE_FORMS = "YYYY, YYYY-MM, YYYY-MM-DD or an ISO date-time"
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MIN_YEAR = 1000


def _date(value: object, key: str) -> date:
    text = str(value).strip()
    try:
        if len(text) == 4 and text.isascii() and text.isdigit():
            parsed = date(int(text), 1, 1)
        elif match := _YEAR_MONTH.match(text):
            parsed = date(int(match.group(1)), int(match.group(2)), 1)
        elif "T" in text:
            parsed = datetime.fromisoformat(text).date()
        else:
            parsed = date.fromisoformat(text)
    except ValueError:
        raise RowError(f"{key!r} is not a date ({DATE_FORMS}): {text[:30]!r}") from None
    latest = date.today().year + 1
    if not MIN_YEAR <= parsed.year <= latest:
        raise RowError(f"{key!r} year {parsed.year} is out of range ({MIN_YEAR}-{latest})")
    return parsed
