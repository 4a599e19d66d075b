"""Serving and loading over HTTP for `bench e2e` and `bench similar --http`: a gunicorn started
with `make run`'s command (project.devstack.web_command: same workers and threads), clients
on keep-alive connections, latency percentiles, and the server's CPU from /proc.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import percentile
from project import devstack

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        return [self.proc.pid, *_children(self.proc.pid)]

    def cpu_seconds(self) -> float:
        return sum(_process_cpu(pid) for pid in self.pids()) / TICK


def _process_cpu(pid: int) -> int:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(parts[11]) + int(parts[12])  # utime + stime, in ticks


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def postgres_cpu_seconds(pgdata: Path = ROOT / "var" / "postgres") -> float | None:
    """CPU of the embedded Postgres (postmaster and every backend): what the queries cost on
    the database side. A backend that exits between two readings takes its share with it,
    so both servers keep their connections for the whole run (pools, per-thread
    connections). None when this Postgres is not the embedded one."""
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return sum(_process_cpu(pid) for pid in [postmaster, *_children(postmaster)]) / TICK


@contextmanager
def gunicorn(name: str, port: int, env: dict[str, str], app: str | None = None):
    """A gunicorn on 127.0.0.1:port with `make run`'s command; `app` replaces project.wsgi
    (the peer). Stopped (its process group) on exit."""
    argv = devstack.web_command("127.0.0.1", port)
    if app:
        argv[argv.index("project.wsgi")] = app
    argv[argv.index("--access-logfile") + 1] = "/dev/null"
    log = open(ROOT / "var" / "bench" / f"{name}-{port}.log", "ab")
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        devstack._wait_for_port(port, name, timeout=90)
        yield Server(name, port, proc)
    finally:
        devstack.terminate(proc)
        log.close()


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_ms: float = 0.0
    db_cpu_ms: float | None = None
    headers: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict:
        n = len(self.latencies_ms)
        return {"requests": n, "errors": len(self.errors),
                "p50_ms": round(percentile(self.latencies_ms, 50), 1) if n else None,
                "p95_ms": round(percentile(self.latencies_ms, 95), 1) if n else None,
                "qps": round(n / self.seconds, 1) if self.seconds else None,
                "cpu_ms_per_request": round(self.cpu_ms / n, 2) if n else None,
                "db_cpu_ms_per_request": round(self.db_cpu_ms / n, 2)
                if n and self.db_cpu_ms is not None else None}


Request = tuple[str, str, bytes | None]  # method, path, JSON body


def load(server: Server, requests: Sequence[Request], clients: int,
         headers: dict[str, str] | None = None, keep: Sequence[str] = ()) -> Run:
    """Send the requests from `clients` threads (each its own keep-alive connection, taking
    the next request from the shared list); wall time, latencies and the server's CPU."""
    run = Run()
    lock = threading.Lock()
    queue = list(reversed(requests))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                method, path, body = queue.pop()
            sent = {"Content-Type": "application/json", **(headers or {})}
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=sent)
                reply = conn.getresponse()
                data = reply.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                with lock:
                    run.errors.append(f"{path}: {exc}")
                continue
            ms = (time.perf_counter() - started) * 1000
            with lock:
                if reply.status != 200:
                    run.errors.append(f"{reply.status} {path}: {data[:200]!r}")
                else:
                    run.latencies_ms.append(ms)
                if keep:
                    run.headers.append({h: reply.getheader(h, "") for h in keep})
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu, db_cpu = server.cpu_seconds(), postgres_cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    run.cpu_ms = (server.cpu_seconds() - cpu) * 1000
    db_after = postgres_cpu_seconds()
    if db_cpu is not None and db_after is not None:
        run.db_cpu_ms = (db_after - db_cpu) * 1000
    return run


def warm(server: Server, make: Callable[[int], Request], n: int) -> None:
    """Requests until every worker has loaded its encoder and its connections."""
    run = load(server, [make(i) for i in range(n)], clients=4)
    if run.errors:
        print(f"warm-up errors on {server.name}: {run.errors[:3]}", file=sys.stderr)


def round_trips(server: Server, requests: Sequence[Request]) -> dict:
    """Mean SQL and Redis round trips per request (project/roundtrips.py headers)."""
    run = load(server, requests, clients=1, headers={"X-Count-Round-Trips": "1"},
               keep=("X-SQL-Round-Trips", "X-Redis-Round-Trips", "X-SQL-Log"))
    sql = [int(h["X-SQL-Round-Trips"] or 0) for h in run.headers]
    redis = [int(h["X-Redis-Round-Trips"] or 0) for h in run.headers]
    return {"sql": round(sum(sql) / len(sql), 2) if sql else None,
            "redis": round(sum(redis) / len(redis), 2) if redis else None,
            "sql_log": run.headers[-1]["X-SQL-Log"] if run.headers else ""}
