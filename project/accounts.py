"""Glue between the account libraries: django-axes counts failed sign-ins per user name, and
the two sign-in forms name that field differently."""

from __future__ import annotations


def attempted_username(request, credentials: dict | None) -> str | None:
    """The name a failed sign-in tried: allauth's form posts `login` (a user name or an
    e-mail), the admin's `username`."""
    for source in (credentials or {}, request.POST if request is not None else {}):
        for field in ("username", "login", "email"):
            value = source.get(field)
            if value:
                return str(value).strip().lower()
    return None
