"""schemathesis over the served OpenAPI schema, anonymous and with a staff token: no server
errors on any generated input (bounded: a fixed number of examples per operation)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = "tests/fixtures/arxiv-daily-2025-04-01.jsonl"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.skipif(not SCHEMATHESIS.exists() and not shutil.which("schemathesis"),
                    reason="schemathesis not installed (pip install -e '.[dev]')")
def test_no_generated_request_gets_a_server_error(stack, tmp_path):
    stack.env.update({"API_THROTTLE_ANON": "100000/min", "API_THROTTLE_USER": "100000/min"})
    stack.manage("ingest", "--no-progress", ROWS)
    stack.manage("embed_missing", "--now")
    created = stack.manage("ensure_admin")
    token = created.split("admin API token: ")[1].split()[0]
    stack.start_web()
    for headers in ([], ["-H", f"Authorization: Token {token}"]):
        result = subprocess.run(
            [str(SCHEMATHESIS), "run", f"{stack.url}/api/schema/", "--checks",
             "not_a_server_error", "-n", "25", "--seed", "1", "--no-color", *headers],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)  # (its cache dir)
        assert result.returncode == 0, result.stdout[-6000:]
