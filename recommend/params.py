"""Parsing and validating "similar" and "recommend" input; shared by the HTML views and the API.

One parser per endpoint, as search.params does for search: the page and the API hand their raw
input here and get back the selector's request or an `InvalidParams` (search.params) with one
message per offending field, the same bounds and messages on both front doors. The page
renders the messages inline; the API answers 400 with them (search.api.exception_handler).

"recommend" takes two shapes of the same request:
- a JSON object (the API): {"positive": [ids], "negative": [ids], "aspects": {name: weight},
  "filters": {name: value or [values]}, "k": 10, "candidates": [ids] or null};
- a query string or form (the page): positive=1&positive=2&negative=3&w_task=0.5&k=20, the
  filters by their own names (published_after=...&category=...), candidates=... repeated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from search.params import FILTER_NAMES, InvalidParams, SearchFilters, parse_filters, parse_k

MAX_EXAMPLES = 50  # positive, and negative, examples per request
MAX_CANDIDATES = 1000
# Paging: results offset..offset+k of one ranking; the planner is asked for offset + k, so
# this bounds the work of one request (k <= search.params.MAX_K).
MAX_OFFSET = 900
# Aspect weights are relative (recommend() divides by their sum); the page's sliders use 0..1.
MAX_WEIGHT = 100.0
DEFAULT_ASPECTS = {"generic": 1.0}
WEIGHT_PREFIX = "w_"  # the page's aspect weights: w_task=0.5
# Paper ids as ASCII digits only: str.isdigit() accepts "²", which int() then refuses.
_ID = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class SimilarParams:
    aspect: str = "generic"
    k: int = 10
    filters: SearchFilters = field(default_factory=SearchFilters)
    offset: int = 0
    candidates: list[int] | None = None  # rank only these papers


@dataclass
class RecommendRequest:
    positive: list[int]
    negative: list[int] = field(default_factory=list)
    aspects: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ASPECTS))
    filters: SearchFilters = field(default_factory=SearchFilters)
    k: int = 10
    candidates: list[int] | None = None
    offset: int = 0


def parse_similar(query: Mapping, *, aspects: Sequence[str], strict: bool = True) -> SimilarParams:
    """?aspect=&k=&offset=&candidates=&<filters> of "papers similar to this one"; raises
    InvalidParams. `candidates`: ids repeated or comma-separated (rank only these).

    `aspects`: the names the caller offers (recommend.ordering.similar_names(): the facets
    and the aspect spaces). `strict` rejects unknown parameter names (API); the page passes
    strict=False.
    """
    errors: dict[str, str] = {}
    if strict:
        unknown = sorted(set(query.keys()) - {"aspect", "k", "offset", "candidates", "format",
                                              *FILTER_NAMES})
        if unknown:
            errors["unknown"] = (f"unknown parameter(s): {', '.join(unknown)}; "
                                 f"filters are {', '.join(FILTER_NAMES)}")
    aspect = _last(query, "aspect") or "generic"
    if aspect not in aspects:
        errors["aspect"] = f"{aspect!r} is not an aspect; use one of {', '.join(aspects)}"
    k = parse_k(_last(query, "k"), errors)
    offset = _offset(_last(query, "offset"), errors)
    raw = query.getlist("candidates") if hasattr(query, "getlist") else query.get("candidates")
    if isinstance(raw, str):
        raw = [raw]
    candidates = None
    if raw:
        split = [part for value in raw for part in str(value).split(",") if part.strip()]
        candidates = _ids(split, "candidates", MAX_CANDIDATES, errors)
    filters = parse_filters(query, errors)
    if errors:
        raise InvalidParams(errors)
    return SimilarParams(aspect=aspect, k=k, filters=filters, offset=offset,
                         candidates=candidates)


def parse_recommend(data: object, *, aspects: Sequence[str], default_k: int = 10,
                    strict: bool = True) -> RecommendRequest:
    """A recommend request from a JSON object or a query string (see the module's doc);
    raises InvalidParams. Whether the example papers exist is the selector's to say.

    `aspects`: the names the caller offers. `strict` rejects unknown fields (API).
    """
    if hasattr(data, "getlist"):
        data = _from_query_string(data, strict=strict)
    if not isinstance(data, Mapping):
        raise InvalidParams({"body": "send a JSON object with at least \"positive\": [paper ids]"})
    errors: dict[str, str] = {}
    known = {"positive", "negative", "aspects", "filters", "k", "offset", "candidates"}
    if strict and set(data) - known:
        errors["unknown"] = (f"unknown field(s): {', '.join(sorted(map(str, set(data) - known)))}; "
                             f"use {', '.join(sorted(known))}")
    positive = _ids(data.get("positive"), "positive", MAX_EXAMPLES, errors)
    if not positive and "positive" not in errors:
        errors["positive"] = "give at least one positive example (a paper id)"
    negative = _ids(data.get("negative"), "negative", MAX_EXAMPLES, errors)
    candidates = (None if data.get("candidates") is None
                  else _ids(data.get("candidates"), "candidates", MAX_CANDIDATES, errors))
    weights = _weights(data.get("aspects"), aspects, errors)
    filters = _filters(data.get("filters"), errors)
    k = _k(data.get("k"), default_k, errors)
    raw_offset = data.get("offset")
    if isinstance(raw_offset, (bool, float)):
        errors["offset"] = f"{str(raw_offset)!r} is not a whole number"
        offset = 0
    else:
        offset = _offset("" if raw_offset is None else str(raw_offset).strip(), errors)
    if errors:
        raise InvalidParams(errors)
    return RecommendRequest(positive=positive, negative=negative, aspects=weights,
                            filters=filters, k=k, candidates=candidates, offset=offset)


def _from_query_string(query, *, strict: bool) -> dict:
    """The page's query string in the JSON object's shape (so both take one validation)."""
    out: dict = {}
    for name in ("positive", "negative", "candidates"):
        if query.getlist(name):
            out[name] = query.getlist(name)
    weights = {key[len(WEIGHT_PREFIX):]: query.get(key) for key in query
               if key.startswith(WEIGHT_PREFIX)}
    if weights:
        out["aspects"] = weights
    filters = {name: query.getlist(name) for name in FILTER_NAMES if query.getlist(name)}
    if filters:
        out["filters"] = filters
    for name in ("k", "offset"):
        if query.get(name):
            out[name] = query.get(name)
    if strict:  # an unknown name is reported under its own name, not dropped
        seen = {"positive", "negative", "candidates", "k", "offset", *FILTER_NAMES}
        out.update({key: query.get(key) for key in query
                    if key not in seen and not key.startswith(WEIGHT_PREFIX)})
    return out


def _last(query: Mapping, name: str) -> str:
    raw = query.getlist(name) if hasattr(query, "getlist") else [query.get(name)]
    values = [str(v).strip() for v in raw if v is not None and str(v).strip()]
    return values[-1] if values else ""


def _offset(raw: str, errors: dict[str, str]) -> int:
    """The first result's position (0 = the top), as a string of digits."""
    if not raw:
        return 0
    if not re.fullmatch(r"[0-9]{1,6}", raw) or int(raw) > MAX_OFFSET:
        errors["offset"] = f"offset must be a whole number from 0 to {MAX_OFFSET}"
        return 0
    return int(raw)


def paper_id(value: object) -> int | None:
    """A paper id from an int or a string of ASCII digits; None for anything else (bools,
    floats, "²", "-1", "1e3")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    if isinstance(value, str) and _ID.fullmatch(value.strip()):
        return int(value.strip()) or None
    return None


def _ids(raw: object, name: str, limit: int, errors: dict[str, str]) -> list[int]:
    if raw is None or raw == "":
        return []
    values = raw if isinstance(raw, list) else [raw]
    ids = []
    for value in values:
        pid = paper_id(value)
        if pid is None:
            errors[name] = f"{str(value)!r} is not a paper id (a whole number above 0)"
            return []
        ids.append(pid)
    if len(ids) > limit:
        errors[name] = f"at most {limit} {name} paper ids"
        return []
    return list(dict.fromkeys(ids))  # a repeated id counts once


def _weights(raw: object, aspects: Sequence[str], errors: dict[str, str]) -> dict[str, float]:
    if raw is None or raw == {}:
        return dict(DEFAULT_ASPECTS)
    if not isinstance(raw, Mapping):
        errors["aspects"] = "aspects is an object of aspect name -> weight, as {\"method\": 1.0}"
        return {}
    weights: dict[str, float] = {}
    for aspect, value in raw.items():
        if aspect not in aspects:
            errors["aspects"] = f"{aspect!r} is not an aspect; use one of {', '.join(aspects)}"
            continue
        weight = _number(value)
        if weight is None or not 0.0 <= weight <= MAX_WEIGHT:
            errors["aspects"] = (f"the weight of {aspect!r} must be a number between 0 and "
                                 f"{MAX_WEIGHT:g}")
            continue
        weights[aspect] = weight
    if "aspects" not in errors and not any(weights.values()):
        errors["aspects"] = "give at least one aspect a weight above 0"
    return {a: w for a, w in weights.items() if w > 0}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _filters(raw: object, errors: dict[str, str]) -> SearchFilters:
    if raw is None:
        return SearchFilters()
    if not isinstance(raw, Mapping):
        errors["filters"] = "filters is an object of filter name -> value (or list of values)"
        return SearchFilters()
    unknown = sorted(map(str, set(raw) - set(FILTER_NAMES)))
    if unknown:
        errors["filters"] = (f"unknown filter(s): {', '.join(unknown)}; "
                             f"use {', '.join(FILTER_NAMES)}")
        return SearchFilters()
    problems: dict[str, str] = {}
    filters = parse_filters(raw, problems)
    if problems:  # one field for the request's filters, naming each bad one
        errors["filters"] = "; ".join(f"{name}: {message}" for name, message in problems.items())
    return filters


def _k(raw: object, default: int, errors: dict[str, str]) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, (bool, float)):
        errors["k"] = f"{str(raw)!r} is not a whole number"
        return default
    return parse_k(str(raw).strip(), errors, default=default)



# --- the reader's feed ----------------------------------------------------------------------

FEED_NAMES = {"library", "since", "days", "k", "format"}
MAX_FEED_DAYS = 3660


@dataclass(frozen=True)
class FeedParams:
    library_id: int | None = None
    since: datetime | None = None  # else: since the previous visit, or FEED_DEFAULT_DAYS
    k: int = 20
    filters: SearchFilters = field(default_factory=SearchFilters)


def parse_feed(query: Mapping, *, strict: bool = True) -> FeedParams:
    """?library=&since=|days=&k=&<filters> of the feed (page, API, Atom); raises InvalidParams.
    `since`: an ISO date or date-time (UTC when it has no zone); `days`: the last N days;
    neither: since the previous visit (recommend.feed.default_since)."""
    errors: dict[str, str] = {}
    if strict:
        unknown = sorted(set(query.keys()) - FEED_NAMES - set(FILTER_NAMES))
        if unknown:
            errors["params"] = f"unknown parameter(s): {', '.join(unknown)}"
    library = None
    raw = _last(query, "library")
    if raw:
        if _ID.fullmatch(raw):
            library = int(raw)
        else:
            errors["library"] = f"{raw!r} is not a library id"
    since = None
    raw_since, raw_days = _last(query, "since"), _last(query, "days")
    if raw_since and raw_days:
        errors["since"] = "give since or days, not both"
    elif raw_since:
        try:
            since = datetime.fromisoformat(raw_since)
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            if since.year < 1000:
                raise ValueError
        except ValueError:
            errors["since"] = f"{raw_since[:40]!r} is not a date; use YYYY-MM-DD or an ISO date-time"
    elif raw_days:
        if re.fullmatch(r"[0-9]{1,5}", raw_days) and 1 <= int(raw_days) <= MAX_FEED_DAYS:
            since = timezone.now() - timedelta(days=int(raw_days))
        else:
            errors["days"] = f"days must be a whole number from 1 to {MAX_FEED_DAYS}"
    k = parse_k(_last(query, "k"), errors, default=20)
    if k > settings.FEED_MAX_K and "k" not in errors:
        errors["k"] = f"k must be between 1 and {settings.FEED_MAX_K}"
    filters = parse_filters(query, errors)
    if errors:
        raise InvalidParams(errors)
    return FeedParams(library_id=library, since=since, k=k, filters=filters)

