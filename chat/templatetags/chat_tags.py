from django import template
from django.utils.safestring import SafeString, mark_safe

from chat.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    # Safe to mark: render_markdown escapes raw HTML and sanitises its own output with an allowlist.
    return mark_safe(render_markdown(text or ""))  # noqa: S308
