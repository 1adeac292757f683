from django import template

from evaluator.containers.outputs import size_in_words

from ..models import output_caps

register = template.Library()


@register.simple_tag
def container_output_caps(phase):
    """What a run of the phase may leave in /output, in words."""
    size, files = output_caps(phase)
    return f"{size_in_words(size)} in {files} files and folders"
