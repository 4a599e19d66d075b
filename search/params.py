"""Parsing and validating search input; shared by the HTML views and the API.

Both front doors hand the raw query parameters here and get back either a `SearchParams` or
an `InvalidParams` carrying one clear message per offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from search import concepts
from search.ingest import MIN_YEAR  # the earliest year a paper may carry

MODES = ("semantic", "keyword", "hybrid")
# Hybrid with the semantic list at weight 0.3 found known items best (`manage.py bench modes`,
# docs/benchmarks.md): MRR@10 1.0 on titles, 0.84 on abstract sentences vs 0.79 keyword-only.
DEFAULT_SEMANTIC_WEIGHT = 0.3
PRECISIONS = ("exact", "float", "halfvec", "binary", "ternary")
DEFAULT_MODE = "hybrid"
MAX_K = 100
MAX_QUERY_CHARS = 1000
FILTER_NAMES = (
    "published_after", "published_before", "category", "author", "venue",
    "task", "method", "dataset", "concept",
)
# Query-box shortcuts: `au:hinton cat:cs.CL year:2025 "exact phrase"`
_FIELD = re.compile(r'(?<!\S)(au|author|cat|category|year|venue|task|method|dataset):'
                    r'("([^"]*)"|\S+)', re.I)


class InvalidParams(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class SearchFilters:
    published_after: date | None = None
    published_before: date | None = None
    categories: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    venue: str = ""
    tasks: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    # task / dataset names found in the text ("task:Semantic Segmentation"; search.concepts)
    concepts: tuple[str, ...] = ()
    # Papers Paperscope stored at or after this instant (Paper.created_at): the window of a
    # reader's feed and digest ("new since your last visit"). Not a query-string filter.
    added_after: datetime | None = None

    def is_empty(self) -> bool:
        return self == SearchFilters()

    def as_query(self) -> dict[str, list[str]]:
        """Back to query-string form (for links that keep the filters)."""
        out: dict[str, list[str]] = {}
        if self.published_after:
            out["published_after"] = [self.published_after.isoformat()]
        if self.published_before:
            out["published_before"] = [self.published_before.isoformat()]
        for name, values in (("category", self.categories), ("author", self.authors),
                             ("task", self.tasks), ("method", self.methods),
                             ("dataset", self.datasets), ("concept", self.concepts)):
            if values:
                out[name] = list(values)
        if self.venue:
            out["venue"] = [self.venue]
        return out


@dataclass(frozen=True)
class SearchParams:
    query: str = ""
    k: int = 10
    mode: str = DEFAULT_MODE
    filters: SearchFilters = field(default_factory=SearchFilters)
    # weight of the semantic list in hybrid fusion (keyword gets 1 - weight)
    semantic_weight: float = DEFAULT_SEMANTIC_WEIGHT
    # vector precision mode; "" = the operator's default (settings.SEARCH_PRECISION)
    precision: str = ""


def _getlist(data: Mapping, name: str) -> list[str]:
    if hasattr(data, "getlist"):
        values = data.getlist(name)
    else:
        raw = data.get(name)
        values = raw if isinstance(raw, list) else ([] if raw in (None, "") else [raw])
    return [str(v).strip() for v in values if str(v).strip()]


def _one(data: Mapping, name: str) -> str:
    values = _getlist(data, name)
    return values[-1] if values else ""


def _date(value: str, name: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        parsed = (date.fromisoformat(value) if len(value) > 4
                  else date(int(value), 1, 1) if value.isascii() else None)
    except ValueError:
        parsed = None
    if parsed is None or parsed.year < MIN_YEAR:
        errors[name] = f"{value!r} is not a date; use YYYY-MM-DD (or YYYY), {MIN_YEAR} or later"
        return None
    return parsed


def parse_filters(data: Mapping, errors: dict[str, str]) -> SearchFilters:
    after = _date(_one(data, "published_after"), "published_after", errors)
    before = _date(_one(data, "published_before"), "published_before", errors)
    if after and before and after > before:
        errors["published_after"] = "published_after is later than published_before"
    return SearchFilters(
        published_after=after, published_before=before,
        categories=tuple(_getlist(data, "category")), authors=tuple(_getlist(data, "author")),
        venue=_one(data, "venue"), tasks=tuple(_getlist(data, "task")),
        methods=tuple(_getlist(data, "method")), datasets=tuple(_getlist(data, "dataset")),
        concepts=_concepts(_getlist(data, "concept"), errors),
    )


def _concepts(values: list[str], errors: dict[str, str]) -> tuple[str, ...]:
    """"task:Semantic Segmentation" -> itself; the kind is required, its case is not."""
    out = []
    for value in values:
        kind, sep, name = value.partition(":")
        if not sep or kind.strip().lower() not in concepts.KINDS or not name.strip():
            errors["concept"] = (f"{value!r} is not a concept; write the kind and the name, "
                                 "as in task:Semantic Segmentation or dataset:ImageNet")
            continue
        out.append(f"{kind.strip().lower()}:{name.strip()}")
    return tuple(out)


def parse_k(raw: str, errors: dict[str, str], default: int = 10) -> int:
    if not raw:
        return default
    try:
        k = int(raw)
    except ValueError:
        errors["k"] = f"{raw!r} is not a whole number"
        return default
    if not 1 <= k <= MAX_K:
        errors["k"] = f"k must be between 1 and {MAX_K}"
        return default
    return k


def parse_search_params(
    data: Mapping, *, allowed_extra: Sequence[str] = (), strict: bool = True
) -> SearchParams:
    """Validate query parameters; raises InvalidParams naming every bad field.

    `strict` rejects unknown parameter names (API); the HTML form passes strict=False.
    """
    errors: dict[str, str] = {}
    known = {"q", "k", "mode", "semantic_weight", "precision", "page", "format", *FILTER_NAMES, *allowed_extra}
    if strict:
        unknown = sorted(set(data.keys()) - known)
        if unknown:
            errors["unknown"] = (f"unknown parameter(s): {', '.join(unknown)}; "
                                 f"filters are {', '.join(FILTER_NAMES)}")
    query = _one(data, "q")
    if len(query) > MAX_QUERY_CHARS:
        errors["q"] = f"query is longer than {MAX_QUERY_CHARS} characters"
    mode = _one(data, "mode") or DEFAULT_MODE
    if mode not in MODES:
        errors["mode"] = f"{mode!r} is not a mode; use one of {', '.join(MODES)}"
    weight_raw = _one(data, "semantic_weight")
    weight = DEFAULT_SEMANTIC_WEIGHT
    if weight_raw:
        try:
            weight = float(weight_raw)
            if not 0.0 <= weight <= 1.0:
                raise ValueError
        except ValueError:
            errors["semantic_weight"] = "semantic_weight must be a number between 0 and 1"
            weight = DEFAULT_SEMANTIC_WEIGHT
    precision = _one(data, "precision")
    if precision and precision not in PRECISIONS:
        errors["precision"] = (f"{precision!r} is not a precision; use one of "
                               f"{', '.join(PRECISIONS)}")
    k = parse_k(_one(data, "k"), errors)
    filters = parse_filters(data, errors)
    query, filters = apply_field_syntax(query, filters, errors)
    if errors:
        raise InvalidParams(errors)
    return SearchParams(query=query, k=k, mode=mode, filters=filters, semantic_weight=weight,
                        precision=precision)


def apply_field_syntax(
    query: str, filters: SearchFilters, errors: dict[str, str]
) -> tuple[str, SearchFilters]:
    """Move `au:`, `cat:`, `year:`, `venue:`, `task:`... terms from the query into filters."""
    updates: dict[str, Any] = {}
    for match in _FIELD.finditer(query):
        name, value = match.group(1).lower(), (match.group(3) or match.group(2)).strip()
        if name in ("au", "author"):
            updates["authors"] = (*updates.get("authors", filters.authors), value)
        elif name in ("cat", "category"):
            updates["categories"] = (*updates.get("categories", filters.categories), value)
        elif name == "year":
            # ASCII digits (\d also takes "٢٠٢٥"), and a year dates can hold (year:0000 was a 500)
            if not re.fullmatch(r"[0-9]{4}", value) or int(value) < MIN_YEAR:
                errors["q"] = f"year:{value} is not a year; use four digits, {MIN_YEAR} or later"
                continue
            updates["published_after"] = date(int(value), 1, 1)
            updates["published_before"] = date(int(value), 12, 31)
        elif name == "venue":
            updates["venue"] = value
        else:
            field_name = name + "s"
            updates[field_name] = (*updates.get(field_name, getattr(filters, field_name)), value)
    if not updates:
        return query, filters
    remaining = re.sub(r"\s+", " ", _FIELD.sub(" ", query)).strip()
    return remaining, replace(filters, **updates)
