from django import template
from django.utils.safestring import mark_safe

from mica.core.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text):
    # render_markdown sanitises with nh3, so its output is safe to mark as such.
    return mark_safe(render_markdown(text))  # noqa: S308


@register.filter
def metric(value, digits=4):
    """A metric's value, or its confidence interval when given a [low, high] pair."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return " – ".join(metric(part, digits) for part in value)
    return f"{value:.{int(digits)}f}"


@register.filter
def get(mapping, key):
    """mapping[key] in a template, None when absent."""
    return (mapping or {}).get(key)
