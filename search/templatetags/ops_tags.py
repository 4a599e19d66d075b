"""Template filters of the operator's dashboard."""

import json

from django import template

register = template.Library()


@register.filter
def as_json(value) -> str:
    """The value as JSON text, for a data-* attribute (autoescaped there like any text).

    Not json_script: htmx, configured for the CSP with allowScriptTags false, drops <script>
    elements from swapped-in content, so a refreshed section would lose its chart data."""
    return json.dumps(value, separators=(",", ":"))
