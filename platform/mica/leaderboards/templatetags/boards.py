from django import template
from django.utils.html import format_html

from mica.leaderboards.plots import in_order

register = template.Library()


@register.simple_tag
def interval(stored, digits=4):
    """A 95% interval as "[low, high]"; a degenerate one (every resample gave the same value)
    says so, with the reason in its tooltip, instead of looking like certainty."""
    if not stored or stored.get("low") is None or stored.get("high") is None:
        return "–"
    text = f"[{stored['low']:.{digits}f}, {stored['high']:.{digits}f}]"
    if stored.get("degenerate"):
        return format_html(
            '<span class="degenerate" title="{}">{} <span class="badge">degenerate</span></span>',
            "Every bootstrap sample gave the same value (too few cases or too few of a class): "
            "this interval does not show the real uncertainty.", text)
    return text


@register.filter
def p_value(value):
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@register.filter
def plot_of(plots, name):
    return (plots or {}).get(name)


@register.filter
def ordered(plots):
    """A stored {name: plot} as [(name, plot)] in the order of mica.leaderboards.plots.ORDER."""
    return in_order(plots)


@register.filter
def cell(value):
    """A table cell of a plot's data: numbers to 4 significant digits, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value
