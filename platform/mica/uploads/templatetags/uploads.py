from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def tus_chunk_bytes():
    """The bytes a browser sends per PATCH (MICA_UPLOAD_CHUNK_BYTES)."""
    return settings.MICA_UPLOAD_CHUNK_BYTES
