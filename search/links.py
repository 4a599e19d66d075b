"""Links that may reach a page: only absolute http(s) URLs with a host.

A paper's source URL comes from files anyone with an ingest token can upload, and it is
rendered as an ``<a href>`` and returned by the API. Escaping does not make
``javascript:alert(1)`` or ``data:text/html,...`` inert, so every such value passes here at
ingestion and again where it is shown (rows stored before the check existed).
"""

from __future__ import annotations

from urllib.parse import urlsplit

SAFE_SCHEMES = ("http", "https")


def safe_link(value: object) -> str:
    """``value`` when it is an absolute http(s) URL with a host, else ``""``.

    Whitespace and control characters are refused rather than stripped: browsers drop them
    inside a scheme (``java\\tscript:``), so a stripped value could be read differently by the
    browser than by this check.
    """
    if not isinstance(value, str):
        return ""
    url = value.strip()
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return ""
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname:
        return ""
    return url
