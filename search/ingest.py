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
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Iterator

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


def open_text(path: Path) -> IO[str]:
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
    return io.TextIOWrapper(stream, encoding="utf-8", errors="strict")


def count_rows(path: Path) -> int:
    with open_text(path) as handle:
        return sum(1 for line in handle if line.strip())


def read_rows(path: Path, *, file_date: date | None = None) -> Iterator[ParsedRow]:
    """Yield every non-blank line of `path` as a record or an error; never raises on bad rows."""
    if file_date is None:
        file_date = date_from_name(path.name)
    with open_text(path) as handle:
        line_no = 0
        while True:
            line_no += 1
            try:
                line = handle.readline()
            except UnicodeDecodeError:
                yield ParsedRow(line_no, error="not valid UTF-8")
                return
            except (OSError, EOFError) as exc:  # truncated gzip and the like
                yield ParsedRow(line_no, error=f"cannot read the file past this line: {exc}")
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield ParsedRow(line_no, error=f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            try:
                yield ParsedRow(line_no, record=parse_row(row, file_date=file_date))
            except RowError as exc:
                yield ParsedRow(line_no, error=str(exc))


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


def _date(value: object, key: str) -> date:
    text = str(value).strip()
    try:
        if len(text) == 4 and text.isdigit():
            return date(int(text), 1, 1)
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        raise RowError(f"{key!r} is not a date (YYYY-MM-DD): {text[:30]!r}") from None
