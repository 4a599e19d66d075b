"""Embedding pipeline throughput through the real path (docs/benchmarks.md "Embedding pipeline
throughput (bench pipeline)").

N papers the corpus does not hold (from ../shared/data/arxiv-daily) go in through the
`ingest` command while a real Celery worker (the project's worker command, started here as a
subprocess) embeds them. The clock runs from the ingest's start until every active space has,
for every new paper, a vector of its current text with its halfvec and bit copies, and its
ternary code where the space has one.

The run happens in a copy of the dev database (`CREATE DATABASE ... TEMPLATE`, dropped
afterwards unless --keep) with its own Redis database, so every run starts from the same
corpus and the dev data stays as it was. A warm-up ingest of --warmup other papers first
loads the worker's model and adapters (a long-lived worker has them loaded).

CPU is read from /proc (psutil) before and after, over process trees: the worker (its main
process and pool children), the ingest command, and the Postgres server (postmaster,
backends, WAL writer, checkpointer, autovacuum; reaped children's CPU included through
cutime; the backend of this command's own progress polling is measured and taken off).
That is load-independent; papers/s is not (the load average is printed with it).
Side by side in the same run: the encoder alone on the same texts in this process (the floor:
docs/s and CPU-ms per doc), which also splits the worker's CPU into encoder and Python.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

from bench.common import ARXIV_DAILY, OUT, ROOT, machine, write_json

HELP = "papers/s and CPU-ms per paper, ingest + a real Celery worker, into every active space"
CLONE = "paperscope_bench_pipeline"
REDIS_DB = 9  # the run's broker and cache (the dev stack uses 0)


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=2000, help="new papers in the timed run")
    parser.add_argument("--warmup", type=int, default=64, help="papers ingested before timing")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="the worker's --concurrency (prefork processes)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before giving up")
    parser.add_argument("--encoder-n", type=int, default=None,
                        help="texts for the encoder-alone column (default: all N)")
    parser.add_argument("--without-graphs", default="",
                        help="what-if: drop these precisions' graphs (float,binary) of every "
                             "space in the copy first (the planner then serves them by halfvec)")
    parser.add_argument("--also-wait-for", default="", metavar="TABLE",
                        help="a second wave's table (with a paper_id column): the clock also "
                             "waits for a row per new paper there (set the task in "
                             "EMBEDDING_FOLLOW_UP_TASKS)")
    parser.add_argument("--keep", action="store_true", help="keep the copied database")
    parser.add_argument("--json", type=Path, help="also write the results here")


def run(command, **options):
    say = command.stdout.write
    from search.models import Paper

    if not Paper.objects.exists():
        raise CommandError("no papers loaded: run `make run` once (or manage.py ingest data/demo)")
    say(f"machine: {machine()}")
    results = measure(say, **options)
    write_json(options.get("json"), results)


def measure(say, *, n, warmup, concurrency, timeout, encoder_n, keep, without_graphs="",
            also_wait_for="", **_):
    work = OUT / "pipeline"
    work.mkdir(parents=True, exist_ok=True)
    warm_file, timed_file = work / "warmup.jsonl.gz", work / "timed.jsonl.gz"
    texts = _pick_new_papers(warmup, n, warm_file, timed_file)
    env = _clone_environment()
    dropped = _drop_graphs(env, [p for p in without_graphs.split(",") if p])
    worker = None
    try:
        worker = _start_worker(env, concurrency, work / "worker.log")
        _ingest_and_wait(env, warm_file, timeout, what="warm-up", table=also_wait_for)  # untimed
        postgres = _postmaster(env)
        load_before = os.getloadavg()
        cpu_before = {"worker": _tree_cpu(worker.pid), "postgres": _tree_cpu(postgres)}
        started = time.perf_counter()
        ingest_cpu, papers, polling = _ingest_and_wait(env, timed_file, timeout, what="timed",
                                                        table=also_wait_for)
        elapsed = time.perf_counter() - started
        cpu = {"worker": _tree_cpu(worker.pid) - cpu_before["worker"],
               "postgres": _tree_cpu(postgres) - cpu_before["postgres"] - polling,
               "ingest": ingest_cpu}
        load_after = os.getloadavg()
        spaces = _space_summary(env)
    finally:
        if worker is not None:
            _stop(worker)
        if not keep:
            _drop_clone()
    encoder = _encoder_alone(texts[:encoder_n] if encoder_n else texts)
    per_paper = {k: 1000 * v / papers for k, v in cpu.items()}
    per_paper["encoder"] = min(encoder["cpu_ms_per_doc"], per_paper["worker"])
    per_paper["python"] = per_paper["worker"] - per_paper["encoder"] + per_paper["ingest"]
    total = per_paper["worker"] + per_paper["postgres"] + per_paper["ingest"]
    result = {
        "papers": papers, "seconds": round(elapsed, 1), "papers_per_s": round(papers / elapsed, 1),
        "cpu_ms_per_paper": round(total, 1),
        "split_ms": {k: round(per_paper[k], 1) for k in ("encoder", "python", "postgres")},
        "split_detail_ms": {k: round(per_paper[k], 1) for k in ("worker", "ingest", "postgres")},
        "bench_polling_ms_excluded": round(1000 * polling / papers, 1),
        "projected_2_idle_cores_papers_per_s": round(2000 / total, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "worker_concurrency": concurrency, "encoder_alone": encoder, "spaces": spaces,
        "graphs_dropped": dropped,
        "settings": {"EMBEDDING_TASK_CHUNK": settings.EMBEDDING_TASK_CHUNK,
                     "EMBEDDING_BATCH_SIZE": settings.EMBEDDING_BATCH_SIZE,
                     "EMBEDDING_MODEL": settings.EMBEDDING_MODEL},
    }
    say(f"\nembedding pipeline, real path (ingest + Celery worker --concurrency {concurrency}), "
        f"{papers} new papers into {len(spaces)} active spaces "
        f"({', '.join(s['aspect'] for s in spaces)}):")
    say(f"  {result['papers_per_s']} papers/s ({result['seconds']} s); load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    say(f"  CPU {total:.1f} ms per paper: encoder {per_paper['encoder']:.1f}, Python "
        f"{per_paper['python']:.1f} (worker minus encoder {per_paper['worker'] - per_paper['encoder']:.1f}"
        f" + ingest command {per_paper['ingest']:.1f}), Postgres {per_paper['postgres']:.1f} "
        f"(this bench's own polling, {1000 * polling / papers:.1f}, taken off)")
    say(f"  projected on 2 idle cores: <= {2000 / total:.1f} papers/s")
    say(f"  encoder alone, same texts, this process: {encoder['docs_per_s']} docs/s, "
        f"{encoder['cpu_ms_per_doc']} CPU-ms per doc ({encoder['docs']} docs)")
    if dropped:
        say(f"  (what-if: graphs dropped before the run: {', '.join(dropped)})")
    for s in spaces:
        say(f"  space {s['name']}: {s['vectors']} vectors, {s['codes']} codes, "
            f"{s['hnsw_indexes']} HNSW indexes")
    return result


# --- the papers ---------------------------------------------------------------------------------

def _pick_new_papers(warmup: int, n: int, warm_file: Path, timed_file: Path) -> list[str]:
    """Rows of the daily crawl whose arXiv id the corpus lacks (the demo corpus is April 2025:
    the rows come from other days), the first `warmup` to one file, the next `n` to another.
    Returns the texts of the timed ones, as the encoder sees them."""
    from search.embedders import paper_text
    from search.models import Paper

    stored = set(Paper.objects.exclude(arxiv_id=None).values_list("arxiv_id", flat=True))
    demo_days = {p.name for p in (ROOT / "data" / "demo").glob("*.jsonl.gz")}
    rows: list[str] = []
    seen: set[str] = set()
    for path in sorted(ARXIV_DAILY.glob("*.jsonl.gz")):
        if path.name in demo_days:
            continue
        with gzip.open(path, "rt") as fh:
            for line in fh:
                row = json.loads(line)
                key = str(row.get("id", ""))
                if key and key not in stored and key not in seen and row.get("summary"):
                    seen.add(key)
                    rows.append(line if line.endswith("\n") else line + "\n")
        if len(rows) >= warmup + n:
            break
    if len(rows) < warmup + n:
        raise CommandError(f"only {len(rows)} new papers in {ARXIV_DAILY}; lower --n")
    with gzip.open(warm_file, "wt") as fh:
        fh.writelines(rows[:warmup])
    with gzip.open(timed_file, "wt") as fh:
        fh.writelines(rows[warmup:warmup + n])
    return [paper_text(r["title"], r["summary"])
            for r in map(json.loads, rows[warmup:warmup + n])]


# --- the copy of the database and the processes --------------------------------------------------

def _admin_connection():
    import psycopg

    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"],
                           password=s["PASSWORD"] or None, dbname="postgres", autocommit=True)


def _clone_environment() -> dict[str, str]:
    """Copy the dev database (no other session may be connected to it) and return the
    environment that points the worker and the ingest command at the copy."""
    source = connection.settings_dict["NAME"]
    connection.close()
    connection.close_pool()  # the pool's idle connections are sessions on the template too
    with _admin_connection() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {CLONE} WITH (FORCE)")
        try:
            admin.execute(f'CREATE DATABASE {CLONE} TEMPLATE "{source}"')
        except Exception as exc:
            raise CommandError(f"could not copy {source!r} (stop the web server and workers "
                               f"using it: a template must have no other sessions): {exc}") from exc
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    redis_url = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = dict(os.environ)
    env.update({"DATABASE_URL": f"postgresql://{auth}@{s['HOST']}:{s['PORT']}/{CLONE}",
                "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
                "PYTHONUNBUFFERED": "1"})
    return env


def _drop_graphs(env: dict[str, str], precisions: list[str]) -> list[str]:
    """The what-if of --without-graphs: drop those precisions' graphs of every space in the
    copy (never in the dev database)."""
    if not precisions:
        return []
    import psycopg

    from search.planner.indexes import PRECISION_GRAPHS

    dropped = []
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        assert db.info.dbname == CLONE
        for (sid,) in db.execute("SELECT id FROM search_embeddingspace").fetchall():
            for precision in precisions:
                name = f"emb_s{int(sid)}_{PRECISION_GRAPHS[precision]}_hnsw"
                if db.execute("SELECT 1 FROM pg_class WHERE relname = %s", [name]).fetchone():
                    db.execute(f"DROP INDEX {name}")
                    dropped.append(name)
    return dropped


def _drop_clone() -> None:
    with _admin_connection() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {CLONE} WITH (FORCE)")


def _start_worker(env: dict[str, str], concurrency: int, log: Path) -> subprocess.Popen:
    """The project's worker command (as `make run` starts it), waited for until ready."""
    command = [sys.executable, "-m", "celery", "-A", "project", "worker", "--loglevel", "INFO",
               "--concurrency", str(concurrency), "-Q", "ingest,embed,maintenance",
               "--hostname", f"bench-pipeline-{os.getpid()}@%h"]
    out = log.open("w")
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CommandError(f"the worker exited ({proc.returncode}); see {log}")
        if " ready." in log.read_text(errors="replace"):
            return proc
        time.sleep(0.5)
    _stop(proc)
    raise CommandError(f"the worker did not become ready in 120 s; see {log}")


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _ingest_and_wait(env: dict[str, str], path: Path, timeout: float, *, what: str,
                     table: str = "") -> tuple[float, int, float]:
    """Run the ingest command on `path`, then wait until every active space is current for
    every paper it added. Returns (the command's CPU seconds, papers added, the CPU seconds
    of this function's own polling backend, to take off the server's)."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        poller = psutil.Process(db.execute("SELECT pg_backend_pid()").fetchone()[0])
        first = db.execute("SELECT coalesce(max(id), 0) FROM search_paper").fetchone()[0]
        proc = subprocess.Popen([sys.executable, "manage.py", "ingest", "--no-progress", str(path)],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise CommandError(f"ingest of {path} failed ({proc.returncode})")
        cpu = usage.ru_utime + usage.ru_stime
        deadline = time.monotonic() + timeout
        while True:
            added, lagging = _progress(db, first, table)
            if not lagging:
                polled = poller.cpu_times()
                return cpu, added, polled.user + polled.system
            if time.monotonic() > deadline:
                raise CommandError(f"{what}: spaces still incomplete after {timeout} s: {lagging}")
            time.sleep(0.5)


def _progress(db, first: int, table: str = "") -> tuple[int, dict[str, int]]:
    """(papers added since `first`, {space: papers still lacking a current vector, its copies
    or its code}). One query, cheap next to the work it waits for."""
    added = db.execute("SELECT count(*) FROM search_paper WHERE id > %s", [first]).fetchone()[0]
    rows = db.execute(
        """
        SELECT s.name, count(e.id) FILTER (
            WHERE e.embedding_half IS NOT NULL AND e.embedding_bit IS NOT NULL
              AND (s.code_version = '' OR s.code_version IS NULL OR c.embedding_id IS NOT NULL))
        FROM search_embeddingspace s
        LEFT JOIN search_paper p ON p.id > %s
        LEFT JOIN search_paperembedding e
             ON e.space_id = s.id AND e.paper_id = p.id AND e.content_hash = p.content_hash
        LEFT JOIN search_papercode c ON c.embedding_id = e.id
        WHERE s.is_active GROUP BY s.name
        """, [first]).fetchall()
    lagging = {name: added - done for name, done in rows if done < added}
    if table:  # a second wave's rows (e.g. sentence vectors): one at least per new paper
        if not table.replace("_", "").isalnum():
            raise CommandError(f"not a table name: {table!r}")
        done = db.execute(f"SELECT count(DISTINCT paper_id) FROM {table} WHERE paper_id > %s",
                          [first]).fetchone()[0]
        if done < added:
            lagging[table] = added - done
    return added, lagging


def _space_summary(env: dict[str, str]) -> list[dict]:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        rows = db.execute(
            """
            SELECT s.id, s.name, s.aspect,
                   (SELECT count(*) FROM search_paperembedding e WHERE e.space_id = s.id),
                   (SELECT count(*) FROM search_papercode c WHERE c.space_id = s.id),
                   (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'emb\\_s' || s.id || '\\_%%'
                    AND indexdef LIKE '%%USING hnsw%%')
            FROM search_embeddingspace s WHERE s.is_active ORDER BY s.id
            """).fetchall()
    return [{"id": i, "name": name, "aspect": aspect, "vectors": v, "codes": c, "hnsw_indexes": h}
            for i, name, aspect, v, c, h in rows]


# --- CPU ------------------------------------------------------------------------------------------

def _postmaster(env: dict[str, str]) -> int:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]
    return psutil.Process(backend).ppid()


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants, including children already reaped (their
    time is in their parent's cutime / cstime)."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _encoder_alone(texts: list[str]) -> dict:
    """The floor: the worker's encoder on the same texts, in this process (its threads' CPU
    is this process's CPU)."""
    from search.embedders import get_encoder

    encoder = get_encoder()
    encoder.encode(texts[:16], batch_size=settings.EMBEDDING_BATCH_SIZE)  # warm
    cpu, wall = time.process_time(), time.perf_counter()
    encoder.encode(texts, batch_size=settings.EMBEDDING_BATCH_SIZE)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"docs": len(texts), "docs_per_s": round(len(texts) / wall, 1),
            "cpu_ms_per_doc": round(1000 * cpu / len(texts), 1)}
