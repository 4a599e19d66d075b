"""Template helpers for concepts ("task:Semantic Segmentation")."""

from django import template

from search import concepts

register = template.Library()


@register.filter
def concept_name(concept: str) -> str:
    return concepts.name_of(concept) if ":" in concept else concept


@register.filter
def concepts_of_kind(found, kind: str) -> list[str]:
    return [c for c in found or () if concepts.kind_of(c) == kind]
