"""HTML to PDF with WeasyPrint, for documents built from the system's own templates.

WeasyPrint's user-agent stylesheet gives every element the footnote and note pseudo-elements
(`::footnote-call`, `::footnote-marker`, `::note-call`, `::note-marker`, `::note-callback`) and
computes a style for each of them: four of every five styles computed for a patient's trace (8,800
of 11,000). Our documents place no footnotes or notes (`float: footnote`), so they are rendered
with that stylesheet less those five rules, and come out byte for byte the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

_FOOTNOTE_AND_NOTE_RULES = re.compile(
    r"^::(?:footnote-call|footnote-marker|note-call|note-marker|note-callback)\b[^\n]*$",
    re.MULTILINE,
)


def without_footnote_rules(css: str) -> str:
    return _FOOTNOTE_AND_NOTE_RULES.sub("", css)


@cache
def _html_class() -> Any:
    from weasyprint import CSS, HTML  # type: ignore[import-untyped]

    try:
        from weasyprint.html import UA, UA_STYLESHEET  # type: ignore[import-untyped]
    except ImportError:  # another WeasyPrint: its own stylesheet, only slower
        return HTML
    # Its @counter-style rules are already in WeasyPrint's own counter styles, which every
    # document starts from; parsed again here, they go to a dictionary of their own.
    lean = CSS(string=without_footnote_rules(UA), counter_style={})

    # `_ua_stylesheets` is WeasyPrint's own hook (70.0); should it be renamed, documents render
    # with the whole stylesheet, only slower, and tests/test_pdf.py says so.
    class DocumentHTML(HTML):  # type: ignore[misc]
        def _ua_stylesheets(self, *args: Any, **kwargs: Any) -> list[Any]:
            sheets = super()._ua_stylesheets(*args, **kwargs)
            return [lean if sheet is UA_STYLESHEET else sheet for sheet in sheets]

    return DocumentHTML


def html_to_pdf(html: str, *, url_fetcher: Callable[..., dict[str, Any]]) -> bytes:
    """The PDF of `html`, a document without footnotes or notes (`float: footnote`)."""
    pdf: bytes = _html_class()(string=html, url_fetcher=url_fetcher).write_pdf()
    return pdf
