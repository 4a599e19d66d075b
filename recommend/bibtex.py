"""A library as BibTeX, and BibTeX back into a library (bibtexparser 1.x does the syntax).

Entries are matched to stored papers by arXiv id (`eprint`, or an arxiv.org link / "arXiv:"
note anywhere in the entry), then DOI, then exact title; what matches nothing is reported
by its citation key, never fatal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from django.db.models.functions import Lower

from recommend.libraries import MAX_IMPORT, ImportReport, add_many
from recommend.models import Library
from search.ingest import normalize_arxiv_id, normalize_doi
from search.models import Paper
from search.params import InvalidParams

MAX_BIBTEX_BYTES = 5 * 1024 * 1024
_ARXIV_IN_TEXT = re.compile(r"(?:arxiv\.org/(?:abs|pdf)/|arxiv:\s*)([a-z\-]+/\d{7}|\d{4}\.\d{4,5})", re.I)
_KEY_WORD = re.compile(r"[A-Za-z0-9]+")


# --- export ----------------------------------------------------------------------------------

def _plain(text: str) -> str:
    """Text safe inside a braced BibTeX value: balanced braces only, no line breaks."""
    text = " ".join(str(text).split())
    depth, out = 0, []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                continue
            depth -= 1
        out.append(ch)
    return "".join(out) + "}" * depth


def citation_key(paper: Paper, taken: set[str]) -> str:
    """author surname + year + first title word, ASCII ("vaswani2017attention"), made unique."""
    surname = paper.authors[0].split()[-1] if paper.authors and paper.authors[0].split() else "anon"
    year = str(paper.published.year) if paper.published else ""
    words = [w for w in _KEY_WORD.findall(_ascii(paper.title)) if len(w) > 3] or ["paper"]
    base = (_ascii(surname) + year + words[0]).lower() or f"paper{paper.pk}"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}{chr(ord('a') + n - 2) if n <= 27 else n}"
    taken.add(key)
    return key


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isascii() and c.isalnum())


def to_bibtex(papers: Sequence[Paper]) -> str:
    from bibtexparser.bibdatabase import BibDatabase
    from bibtexparser.bwriter import BibTexWriter

    database = BibDatabase()
    taken: set[str] = set()
    for paper in papers:
        entry = {"ENTRYTYPE": "article" if paper.venue else "misc", "ID": citation_key(paper, taken),
                 "title": _plain(paper.title)}
        if paper.authors:
            entry["author"] = " and ".join(_plain(a) for a in paper.authors)
        if paper.published:
            entry["year"] = str(paper.published.year)
            entry["month"] = paper.published.strftime("%b").lower()
        if paper.venue:
            entry["journal"] = _plain(paper.venue)
        if paper.arxiv_id:
            entry.update(eprint=paper.arxiv_id, archiveprefix="arXiv")
            if paper.categories:
                entry["primaryclass"] = _plain(paper.categories[0])
        if paper.doi:
            entry["doi"] = _plain(paper.doi)
        if paper.external_url:
            entry["url"] = _plain(paper.external_url)
        if paper.abstract:
            entry["abstract"] = _plain(paper.abstract)
        database.entries.append(entry)
    writer = BibTexWriter()
    writer.order_entries_by = None  # the library's order
    writer.display_order = ["title", "author", "year", "month", "journal", "eprint"]
    return writer.write(database)


# --- import ----------------------------------------------------------------------------------

def parse_bibtex(text: str) -> list[dict]:
    """The entries of a BibTeX file; InvalidParams when it holds none (not BibTeX at all)."""
    import bibtexparser
    from bibtexparser.bparser import BibTexParser

    if len(text.encode("utf-8", "replace")) > MAX_BIBTEX_BYTES:
        raise InvalidParams({"file": f"a BibTeX file of at most {MAX_BIBTEX_BYTES // 2**20} MiB"})
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False,
                          interpolate_strings=True)
    try:
        entries = bibtexparser.loads(text, parser=parser).entries
    except Exception as error:  # bibtexparser raises bare pyparsing / Key / Index errors
        raise InvalidParams({"file": f"not a readable BibTeX file: {str(error)[:200]}"}) from None
    if not entries:
        raise InvalidParams({"file": "no BibTeX entries found (expected entries like "
                                     "@article{key, title = {...}, ...})"})
    if len(entries) > MAX_IMPORT:
        raise InvalidParams({"file": f"at most {MAX_IMPORT} entries per import"})
    return entries


def _entry_arxiv(entry: dict) -> str:
    eprint = entry.get("eprint", "")
    if eprint:
        try:
            return normalize_arxiv_id(eprint.strip())
        except (ValueError, TypeError):
            pass
    for value in entry.values():
        found = _ARXIV_IN_TEXT.search(str(value))
        if found:
            try:
                return normalize_arxiv_id(found.group(1))
            except (ValueError, TypeError):
                continue
    return ""


def _title_key(title: str) -> str:
    return " ".join(re.sub(r"[{}\\]", "", title).lower().split())


def import_bibtex(*, library: Library, text: str) -> ImportReport:
    entries = parse_bibtex(text)
    report = ImportReport()
    wanted = []  # (entry label, arxiv id, doi, title key)
    for n, entry in enumerate(entries, 1):
        label = entry.get("ID") or f"entry {n}"
        doi = ""
        if entry.get("doi"):
            try:
                doi = normalize_doi(entry["doi"]) or ""
            except (ValueError, TypeError):
                doi = ""
        title = _title_key(entry.get("title", ""))
        arxiv = _entry_arxiv(entry)
        if not (arxiv or doi or title):
            report.errors.append(f"{label}: no arXiv id, DOI or title to match")
            continue
        wanted.append((label, arxiv, doi, title))
    by_arxiv = {p.arxiv_id: p for p in Paper.objects.filter(arxiv_id__in=[w[1] for w in wanted if w[1]])}
    by_doi = {p.doi: p for p in Paper.objects.filter(doi__in=[w[2] for w in wanted if w[2]])}
    titles = [w[3] for w in wanted if w[3] and w[1] not in by_arxiv and w[2] not in by_doi]
    by_title: dict[str, Paper] = {}
    if titles:
        # Exact title equality, case-insensitive (stored titles are whitespace-normalised)
        candidates = Paper.objects.annotate(lower_title=Lower("title")).filter(lower_title__in=titles)
        by_title = {_title_key(p.title): p for p in candidates[:len(titles) * 2]}
    found: list[Paper] = []
    for label, arxiv, doi, title in wanted:
        paper = by_arxiv.get(arxiv) or by_doi.get(doi) or by_title.get(title)
        if paper is None:
            report.unknown.append(label)
        else:
            found.append(paper)
    return add_many(library, found, report)
