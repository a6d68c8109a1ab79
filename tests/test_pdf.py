"""Documents are rendered with WeasyPrint's user-agent stylesheet less its footnote and note rules
(common.pdf), and come out as WeasyPrint's own stylesheet would render them."""

from __future__ import annotations

from typing import Any

from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.html import UA, UA_STYLESHEET  # type: ignore[import-untyped]

from common.pdf import _html_class, html_to_pdf, without_footnote_rules

DOCUMENT = """<!DOCTYPE html><html lang="en"><head><style>
  @page { size: A4; @bottom-right { content: "page " counter(page) " of " counter(pages); } }
  table { width: 100%; border-collapse: collapse; table-layout: fixed; }
  td { overflow-wrap: break-word; border-bottom: 0.5px solid #ccc; }
</style></head><body>
<h1>Lot L-1</h1><p>A paragraph with <span class="fail">bold</span> and <q>quoted</q> text.</p>
<ul><li>a bulleted item</li><li>another</li></ul><ol><li>a numbered item</li></ol>
<table><colgroup><col style="width: 30%"><col style="width: 70%"></colgroup>
<tr><th>Certificate</th><th>SHA-256</th></tr>
<tr><td>GMP</td><td>c5b3eb8b85066086dbbf8fde57e27a335961ef0f1766ace661baa1a69710ee8c</td></tr>
</table></body></html>"""


def no_fetching(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(url)


def test_documents_are_rendered_without_the_footnote_rules_and_come_out_the_same():
    assert "::footnote-call" in UA and "::note-callback" in UA
    lean = without_footnote_rules(UA)
    assert "::footnote" not in lean and "::note" not in lean and "::marker" in lean
    sheets = _html_class()(string=DOCUMENT)._ua_stylesheets()
    assert len(sheets) == 1 and sheets[0] is not UA_STYLESHEET

    assert (
        html_to_pdf(DOCUMENT, url_fetcher=no_fetching)
        == HTML(string=DOCUMENT, url_fetcher=no_fetching).write_pdf()
    )
