"""The reader's loop in headless Chromium: sign up, save a paper from the search page (htmx),
rate it, open the feed and see a new paper with its reason — under the site's CSP."""

from __future__ import annotations

from pathlib import Path

from recommend.models import LibraryPaper, Rating, ReaderModel
from tests.conftest import needs_chromium, wait_for

pytestmark = needs_chromium
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_sign_up_save_rate_and_see_the_feed_with_reasons(live_server, browser_page, transactional_db,
                                                          day_corpus, celery_worker):
    page = browser_page
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)

    page.goto(live_server.url + "/accounts/signup/")
    page.fill("input[name=email]", "reader@example.org")
    page.fill("input[name=username]", "reader")
    page.fill("input[name=password1]", "a long passphrase")
    page.fill("input[name=password2]", "a long passphrase")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url("**/feed/")
    assert "not saved or rated a paper yet" in page.content()

    page.goto(live_server.url + "/?q=sonar+marine+debris")
    page.wait_for_selector("#results .result")
    page.evaluate("window.__marker = 'same-page'")
    first = page.locator("#results .result").first
    title = first.locator(".title").inner_text()
    first.locator("button.save-button").click()
    page.wait_for_selector("#results .result >> .chip.saved")  # swapped in place
    page.locator("#results .result").first.locator("button.thumb[value='1']").click()
    page.wait_for_selector("#results .result >> button.thumb.on")
    assert page.evaluate("window.__marker") == "same-page"
    saved = LibraryPaper.objects.get()
    assert saved.paper.title == title and Rating.objects.get().value == 1

    wait_for(lambda: ReaderModel.objects.filter(library=saved.library).exists(),
             what="the worker trains the library's model")
    page.goto(live_server.url + "/feed/")
    page.wait_for_selector(".results.feed .result")
    reasons = page.locator(".results.feed .reason").all_inner_texts()
    titles = page.locator(".results.feed .result .title").all_inner_texts()
    assert reasons and all(r.startswith("Why:") and len(r) > 6 for r in reasons)
    assert title not in titles  # what the reader saved does not come back
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "feed.png"), full_page=False)
    page.goto(f"{live_server.url}/libraries/{saved.library_id}/")
    page.screenshot(path=str(SCREENSHOTS / "library.png"), full_page=False)
    assert blocked == []
