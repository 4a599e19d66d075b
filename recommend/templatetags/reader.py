"""Lookups the reader's templates need: a paper's libraries / rating out of the per-page
state (recommend.reader_views.reader_state)."""

from django import template

register = template.Library()


@register.filter
def lookup(mapping, key):
    """mapping[key], or None (templates cannot index a dict by a variable)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
