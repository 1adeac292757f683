"""Markdown written by organizers, rendered to HTML that is safe to show to anyone."""

import re
from urllib.parse import urlsplit

import markdown as markdown_library
import nh3

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}
# Browsers drop these inside URLs or read "\" as "/": "/\evil.org/x.png" is another site.
_URL_TRICKS = re.compile(r"[\\\s\x00-\x1f\x7f]")


def is_same_site_path(url):
    """True for a relative URL on this site ("/media/x.png", "logo.png"), with no scheme or host."""
    if not url or _URL_TRICKS.search(url) or url.startswith("//"):
        return False
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def _keep_attribute(tag, attribute, value):
    # A remote image is fetched by every reader's browser: a tracking pixel. Images come from Mica.
    if tag == "img" and attribute == "src" and not is_same_site_path(value):
        return None
    return value


def render_markdown(text):
    html = markdown_library.markdown(text or "", extensions=["tables", "fenced_code"])
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
