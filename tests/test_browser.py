"""Browser test: Playwright drives Debian's headless Chromium against the live server."""

from search import services
from search.models import Paper
from tests.conftest import needs_chromium

pytestmark = needs_chromium


def test_typing_a_query_updates_the_results_in_place(live_server, browser_page, fixtures_dir,
                                                     transactional_db):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)))
    page = browser_page
    page.goto(live_server.url + "/")
    page.evaluate("window.__marker = 'same-page'")  # survives only if no full reload happens

    page.locator("#q").press_sequentially("forward-looking sonar marine debris", delay=20)
    page.wait_for_selector("#results .result >> text=Marine Debris", timeout=15000)

    assert page.evaluate("window.__marker") == "same-page"
    assert "q=forward-looking" in page.url  # hx-push-url keeps the URL shareable
    first = page.locator("#results .result .title").first.inner_text()
    assert "Marine Debris" in first
    page.screenshot(path=str(fixtures_dir.parent.parent / "var" / "search-page.png"))


def test_the_paper_page_switches_aspect_in_place_and_explains_with_shared_words_and_names(
        live_server, browser_page, fixtures_dir, transactional_db, monkeypatch):
    from recommend import lexical

    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          spaces=services.configured_spaces())
    monkeypatch.setattr(lexical, "FIT_MIN", 10)
    lexical.fit_model()
    services.concept_stats_fit()
    paper = Paper.objects.get(arxiv_id="2503.22880")
    page = browser_page
    page.goto(f"{live_server.url}/papers/{paper.pk}/")
    page.evaluate("window.__marker = 'same-page'")
    # overall: reranked by shared words as well (settings.RERANK_WEIGHTS)
    page.locator("#similar .result summary").first.click()
    assert page.locator("#similar .result .chip.words").first.inner_text().startswith("words: ")

    page.locator("nav.tabs a", has_text="same task").click()
    page.wait_for_selector("nav.tabs a.active >> text=same task", timeout=15000)
    first = page.locator("#similar .result").first
    first.locator("summary").click()

    assert page.evaluate("window.__marker") == "same-page"  # htmx swapped the list only
    assert "aspect=task" in page.url
    # same task: reranked by the task names both mention (the sonar paper names three)
    assert first.locator(".chip.concept").inner_text().startswith("both mention: ")
    assert first.locator(".chip", has_text="task").count() >= 1


def test_markup_in_paper_fields_stays_inert_and_pages_run_under_the_policy(
        live_server, browser_page, tmp_path, transactional_db):
    import json

    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    rows = [{"id": f"2504.0000{i}", "title": f"Sonar {payload} {i}",
             "summary": f"Marine debris {payload} detection {i}.", "authors": [payload],
             "categories": ["cs.CV"], "abs": "javascript:alert(document.domain)"}
            for i in range(1, 4)]
    path = tmp_path / "arxiv-daily-2025-04-01.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    services.papers_ingest_file(path=path)
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)))
    page = browser_page
    dialogs: list[str] = []
    blocked: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda msg: blocked.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    paper = Paper.objects.order_by("pk").first()

    page.goto(live_server.url + "/?q=sonar")
    page.wait_for_selector("#results .result")
    page.locator("#q").press_sequentially(" debris", delay=10)  # htmx under the policy
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/papers/{paper.pk}/")
    source = page.locator("a", has_text="source").get_attribute("href")

    assert dialogs == []
    assert source == f"https://arxiv.org/abs/{paper.arxiv_id}"
    assert page.locator("img[src='x']").count() == 0  # shown as text, not as an element
    page.goto(live_server.url + "/api/docs/")  # Swagger UI runs from files, no inline script
    page.wait_for_selector(".opblock", timeout=15000)
    assert blocked == []
