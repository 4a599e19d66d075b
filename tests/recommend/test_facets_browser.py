"""The paper page's facet tabs in headless Chromium: "same method" swaps in (htmx) results that
show the matching sentences of both papers with their roles — under the site's CSP."""

from __future__ import annotations

from pathlib import Path

from search.models import Paper
from search.services.sentences import papers_embed_sentences
from tests.conftest import needs_chromium

pytestmark = needs_chromium
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_the_method_tab_shows_matching_sentences(live_server, browser_page, transactional_db, corpus):
    papers_embed_sentences(paper_ids=list(Paper.objects.values_list("pk", flat=True)))
    paper = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()
    page = browser_page
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.set_viewport_size({"width": 1100, "height": 1400})

    page.goto(f"{live_server.url}/papers/{paper.pk}/")
    page.evaluate("window.__marker = 'same-page'")
    page.get_by_role("link", name="same method").click()
    page.wait_for_selector("nav.tabs a.active:has-text('same method')")
    page.wait_for_selector("#similar .result")
    assert page.evaluate("window.__marker") == "same-page"  # swapped in place
    page.locator("#similar .result details.why").first.evaluate("d => d.open = true")
    pair = page.locator("#similar .evidence.facet .pair").first
    assert "this paper" in pair.inner_text()
    assert page.locator("#similar .evidence.facet .role").count() >= 2
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("section.similar").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "paper-facets.png"), full_page=False)
    assert blocked == []
