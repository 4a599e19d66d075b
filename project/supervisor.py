"""Keeping `make run`'s processes up: restart what dies, remember what was started.

Plain Python, no Django (devstack runs before settings can be read).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(f"[paperscope] {message}", flush=True)


def terminate(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Supervised:
    """A child process that is restarted when it dies, with backoff: 1 s, 2 s, 4 s ... up to
    30 s, back to 1 s once it has stayed up for a minute. Postgres and Redis are not restarted
    by this: they belong to the stack and are what the children reconnect to."""

    BACKOFF_MAX = 30.0
    STABLE_AFTER = 60.0

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path | None):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.backoff = 1.0
        self.restart_at: float | None = None
        self.restarts = 0

    def start(self) -> None:
        log = open(self.log_path, "ab") if self.log_path else None
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT if log else None,
                                     start_new_session=True)
        if log:
            log.close()  # the child holds its own descriptor
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self) -> None:
        """Called by the supervisor's loop: notice a death, restart when its backoff is over."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                say(f"restarting {self.name} (restart #{self.restarts})")
                self.start()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        if now - self.started_at > self.STABLE_AFTER:
            self.backoff = 1.0
        say(f"{self.name} exited (code {self.proc.returncode}); restarting in {self.backoff:.0f} s")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, self.BACKOFF_MAX)

    def stop(self) -> None:
        self.restart_at = None
        if self.proc is not None:
            terminate(self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def pid_file(var_dir: Path) -> Path:
    return var_dir / "devstack.pids"


def reap_leftovers(var_dir: Path) -> None:
    """A previous `make run` killed with SIGKILL cannot clean up: its pid file says what it
    started, and what is still alive of it is stopped before this one starts."""
    path = pid_file(var_dir)
    if not path.exists():
        return
    lines = path.read_text().split()
    owner, children = (int(lines[0]), [int(p) for p in lines[1:]]) if lines else (0, [])
    if owner and alive(owner):
        raise SystemExit(f"another `make run` (pid {owner}) is using {var_dir}; stop it "
                         f"first (Ctrl-C in its terminal, or kill {owner})")
    for pid in children:
        if alive(pid):
            say(f"stopping process group {pid} left by an earlier run")
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    path.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_on_second_signal(children: list[Supervised]):
    def handler(signum, frame) -> None:
        say("second signal: killing")
        for child in children:
            child.kill()
    return handler
