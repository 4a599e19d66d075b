"""Hostile files: every bad line reported with its number, every good line in, nothing
crashes (the ingestion reads in-process here; the worker runs the same code)."""

import gzip
import json

import pytest
from django.core.management import call_command

from search.models import Paper
from search.services import papers_ingest_file

pytestmark = pytest.mark.django_db


def good(n: int) -> str:
    return json.dumps({"arxiv_id": f"2504.{n:05d}", "title": f"Paper {n}",
                       "abstract": f"About sonar number {n}."})


def write(tmp_path, name: str, lines: list[bytes]) -> object:
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def lines_of(report) -> dict[int, str]:
    return {e["line"]: e["message"] for e in report.errors}


def test_an_invalid_utf8_line_costs_that_line_only(tmp_path):
    rows = [good(i).encode() for i in range(1, 101)]
    rows[50] = b'{"arxiv_id": "2504.99999", "title": "caf\xe9", "abstract": "x"}'  # line 51

    report = papers_ingest_file(path=write(tmp_path, "papers.jsonl", rows))

    assert list(lines_of(report)) == [51] and "UTF-8" in lines_of(report)[51]
    assert report.created == 99


def test_deep_nesting_is_one_bad_row_and_the_good_row_before_it_stays(tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    report = papers_ingest_file(path=write(tmp_path, "p.jsonl", [good(1).encode(), deep,
                                                                 good(2).encode()]))

    assert lines_of(report) == {2: "JSON nested too deeply"}
    assert report.created == 2


def test_a_huge_line_binary_noise_and_nul_bytes(tmp_path):
    huge = json.dumps({"arxiv_id": "2504.77777", "title": "t", "abstract": "a" * (3 << 20)})
    rows = [good(1).encode(), huge.encode(), bytes(range(256)),
            b'{"arxiv_id": "2504.88888", "title": "nul \\u0000", "abstract": "x"}',
            good(2).encode()]

    report = papers_ingest_file(path=write(tmp_path, "p.jsonl", rows))

    errors = lines_of(report)
    # (the noise holds a newline byte: lines 3 and 4)
    assert set(errors) == {2, 3, 4, 5}, errors
    assert "longer than" in errors[2] and "UTF-8" in errors[4] and "NUL" in errors[5]
    assert report.created == 2


def test_a_truncated_gzip_keeps_the_rows_before_the_damage(tmp_path):
    body = gzip.compress(("\n".join(good(i) for i in range(1, 2001)) + "\n").encode())
    path = tmp_path / "p.jsonl.gz"
    path.write_bytes(body[: len(body) // 2])

    report = papers_ingest_file(path=path)
    call_command("ingest", str(path))  # the progress bar's row count does not crash either

    assert report.error_count == 1 and "cannot read" in report.errors[0]["message"]
    assert 0 < report.created < 2000
    assert Paper.objects.count() == report.created


def test_duplicate_ids_first_wins_and_a_reimport_is_unchanged(tmp_path):
    first = json.dumps({"arxiv_id": "2504.00001", "title": "First", "abstract": "one"})
    second = json.dumps({"arxiv_id": "2504.00001", "title": "Second", "abstract": "two"})
    path = write(tmp_path, "p.jsonl", [first.encode(), good(2).encode(), second.encode()])

    report = papers_ingest_file(path=path)
    again = papers_ingest_file(path=path)

    assert lines_of(report) == {3: "duplicate of line 1 (same id); the first one is kept"}
    assert Paper.objects.get(arxiv_id="2504.00001").title == "First"
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


@pytest.mark.parametrize("value, accepted", [
    ("2025", True), ("2025-04", True), ("2025-04-01", True), ("2025-04-01T10:00:00", True),
    ("801", False), ("0000", False), ("3025-01-01", False), ("2025-13", False), ("٢٠٢٥", False),
])
def test_dates_in_every_documented_form(tmp_path, value, accepted):
    row = json.dumps({"arxiv_id": "2504.00001", "title": "t", "abstract": "a",
                      "published": value})

    report = papers_ingest_file(path=write(tmp_path, "p.jsonl", [row.encode()]))

    assert report.created == (1 if accepted else 0)
    if not accepted:
        assert "YYYY" in report.errors[0]["message"] or "range" in report.errors[0]["message"]


def test_an_empty_file_and_100k_authors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    crowd = json.dumps({"arxiv_id": "2504.00001", "title": "t", "abstract": "a",
                        "authors": [f"A{i}" for i in range(100_000)]})

    assert papers_ingest_file(path=empty).rows == 0
    report = papers_ingest_file(path=write(tmp_path, "p.jsonl", [crowd.encode()]))
    assert "at most" in report.errors[0]["message"]
