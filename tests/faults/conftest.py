"""The fault suite: each test gets a stack of its own (embedded Postgres and Redis on ports of
their own, the app under gunicorn as `make run` serves it), breaks a part of it for real and
checks that it heals by itself. Bounded: every wait has a deadline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from project import devstack
from project.supervisor import Supervised
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_PORT = int(os.environ.get("PAPERSCOPE_FAULTS_PG_PORT", "54349"))
REDIS_PORT = int(os.environ.get("PAPERSCOPE_FAULTS_REDIS_PORT", "6419"))
WEB_PORT = int(os.environ.get("PAPERSCOPE_FAULTS_WEB_PORT", "8419"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Stack:
    profile: devstack.Profile
    env: dict[str, str]
    stops: dict[str, object] = field(default_factory=dict)
    processes: list[Supervised] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{WEB_PORT}"

    def get(self, path: str, timeout: float = 10.0) -> Response:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as reply:
                return Response(reply.status, dict(reply.headers), reply.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())

    def start_postgres(self) -> None:
        _, self.stops["postgres"] = devstack.start_postgres(self.profile)

    def stop_postgres(self) -> None:
        self.stops.pop("postgres")()

    def start_redis(self) -> None:
        _, self.stops["redis"] = devstack.start_redis(self.profile)

    def stop_redis(self) -> None:
        self.stops.pop("redis")()

    def manage(self, *args: str) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], env=self.env, cwd=ROOT,
                              check=True, capture_output=True, text=True).stdout

    def start(self, name: str, argv: list[str]) -> Supervised:
        process = Supervised(name, argv, self.env, self.profile.var_dir / f"{name}.log")
        process.start()
        self.processes.append(process)
        return process

    def start_web(self) -> Supervised:
        web = self.start("web", devstack.web_command("127.0.0.1", WEB_PORT))
        devstack._wait_for_port(WEB_PORT, "gunicorn", timeout=60)
        return web

    def log(self, name: str) -> str:
        path = self.profile.var_dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    return wait_for(predicate, timeout=timeout, interval=interval, what=what)


@pytest.fixture
def stack(request):
    var_dir = ROOT / "var" / "faults" / request.node.name[:40]
    shutil.rmtree(var_dir, ignore_errors=True)
    profile = devstack.Profile("test", var_dir, PG_PORT, REDIS_PORT, "paperscope_faults")
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{PG_PORT}/"
                                         "paperscope_faults",
           "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0", "EMBEDDING_MODEL": "hash:256",
           "DJANGO_SETTINGS_MODULE": "project.settings", "LOG_LEVEL": "WARNING",
           "DB_POOL": "1"}  # served as `make run` serves (the test process itself: DB_POOL=0)
    built = Stack(profile, env)
    built.start_postgres()
    built.start_redis()
    try:
        built.manage("migrate", "--noinput", "-v", "0")
        yield built
    finally:
        for process in reversed(built.processes):
            process.stop()
        for stop in list(built.stops.values()):
            stop()


def peak_connections(database_url: str, clients: list[threading.Thread], count_sql: str,
                     interval: float) -> int:
    """Start the client threads and, until they finish, sample `count_sql` (a count over
    pg_stat_activity) every `interval` seconds: the most Postgres connections seen."""
    for thread in clients:
        thread.start()
    most = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        while any(t.is_alive() for t in clients):
            most = max(most, conn.execute(count_sql).fetchone()[0])
            time.sleep(interval)
    return most
