from datetime import date

import pytest
from django.core.management import call_command

from search.models import Paper
from search.services import papers_ingest_file

pytestmark = pytest.mark.django_db


def test_it_ingests_arxiv_daily_with_first_seen_date_from_file_name(fixtures_dir):
    report = papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")

    assert (report.rows, report.created, report.error_count) == (40, 40, 0)
    paper = Paper.objects.get(arxiv_id="2503.22698")
    assert paper.first_seen == date(2025, 4, 1)
    assert paper.authors == ["Basab Jha", "Firoj Paudel"]
    assert paper.categories == ["cs.CL"]
    assert "\n" not in paper.abstract  # hard line wraps collapsed


def test_reingesting_the_same_file_changes_nothing(fixtures_dir):
    path = fixtures_dir / "arxiv-daily-2025-04-01.jsonl"
    papers_ingest_file(path=path)
    before = dict(Paper.objects.values_list("arxiv_id", "updated_at"))

    again = papers_ingest_file(path=path)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 40)
    assert dict(Paper.objects.values_list("arxiv_id", "updated_at")) == before


def test_a_later_listing_keeps_first_seen_and_takes_new_categories(fixtures_dir):
    papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    report = papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-02.jsonl.gz")

    assert (report.created, report.updated, report.unchanged) == (5, 1, 4)
    assert Paper.objects.count() == 45
    relisted = Paper.objects.get(arxiv_id="2503.24388")
    assert relisted.first_seen == date(2025, 4, 1)
    assert "cs.CV" in relisted.categories


def test_it_reads_the_kaggle_snapshot_format(fixtures_dir):
    report = papers_ingest_file(path=fixtures_dir / "kaggle-sample.json")

    assert (report.created, report.error_count) == (15, 0)
    paper = Paper.objects.get(arxiv_id="0704.0001")
    assert paper.doi == "10.1103/physrevd.76.013009"
    assert paper.venue == "Phys.Rev.D76:013009,2007"
    assert paper.published == date(2007, 4, 2)
    assert paper.authors[0] == "C. Balázs"
    assert paper.categories == ["hep-ph"]


def test_it_reads_our_schema_with_aspect_labels(fixtures_dir):
    report = papers_ingest_file(path=fixtures_dir / "own-schema.jsonl")

    assert (report.created, report.error_count) == (12, 0)
    labelled = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"])
    assert labelled.count() == 3
    assert all(p.datasets for p in labelled)


def test_malformed_rows_are_reported_with_line_numbers_and_good_rows_go_in(fixtures_dir):
    report = papers_ingest_file(path=fixtures_dir / "malformed.jsonl")

    assert report.created == 3
    assert [e["line"] for e in report.errors] == [2, 3, 4, 6, 7]
    messages = {e["line"]: e["message"] for e in report.errors}
    assert "invalid JSON" in messages[2]
    assert "abstract" in messages[4]
    assert "arXiv id" in messages[6]
    assert "date" in messages[7]
    assert all(e["file"] == "malformed.jsonl" for e in report.errors)


def test_the_ingest_command_prints_file_and_line_of_each_bad_row(fixtures_dir, capsys):
    call_command("ingest", str(fixtures_dir / "malformed.jsonl"), "--no-progress")

    out, err = capsys.readouterr()
    assert "malformed.jsonl:2: invalid JSON" in err
    assert "3 new" in out and "5 rejected" in out


def test_a_row_whose_ids_point_at_two_different_papers_is_refused(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text(
        '{"arxiv_id": "2501.00001", "title": "One", "abstract": "First paper."}\n'
        '{"doi": "10.1234/two", "title": "Two", "abstract": "Second paper."}\n')
    papers_ingest_file(path=good)
    clash = tmp_path / "b.jsonl"
    clash.write_text('{"arxiv_id": "2501.00001", "doi": "10.1234/two", "title": "Merged", '
                     '"abstract": "Would merge two papers."}\n')

    report = papers_ingest_file(path=clash)

    assert report.error_count == 1 and "two different papers" in report.errors[0]["message"]
    assert set(Paper.objects.values_list("title", flat=True)) == {"One", "Two"}


def test_a_missing_file_is_a_clear_command_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no such file"):
        call_command("ingest", str(tmp_path / "nope.jsonl"))
