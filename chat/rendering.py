"""Model answers as safe HTML: Markdown (markdown-it, raw HTML off), code highlighted by Pygments on the
server, then sanitised by nh3 with an allowlist. No images: a model must not make the browser fetch a URL,
so a Markdown image becomes a plain link."""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
    "div",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "div": {"class"}, "code": {"class"}, "ol": {"start"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


def _highlight(code: str, lang: str, attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes and wraps it itself
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


def _image_as_link(self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = self.renderInlineAsText(token.children or [], options, env) or src
    # The link is sanitised with the rest; the browser fetches nothing unless the user clicks.
    return f'<a href="{escapeHtml(src)}">{escapeHtml(alt)} (image)</a>'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # "js-default" is markdown-it's safe preset: raw HTML in the source is escaped, not passed through.
    md = MarkdownIt("js-default", {"highlight": _highlight, "linkify": False, "typographer": False})
    md.enable("table")
    md.add_render_rule("image", _image_as_link)
    return md


def render_markdown(text: str) -> str:
    html = _parser().render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
