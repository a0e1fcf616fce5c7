"""The config-directory lock: one writer to ConnectWise per config directory at a time.

An exclusive `fcntl.flock` on `.reconcile/lock` under the config directory, held for a
whole apply (plan, writes, run record, INDEX.md). The kernel releases it when the process
dies, however it dies, so there is no stale lock to clean up after a SIGKILL or a crash.

Why plain `fcntl` and not the `filelock` package: filelock's Unix lock is the same
`flock`, but it opens the file with O_TRUNC on every attempt, which would wipe the holder
record that a refused second writer reads to say who holds the lock; and the stdlib needs
no new runtime dependency. The lock file holds one JSON object naming the holder (pid,
host, user, command, start time). `.reconcile/` ignores itself (a `.gitignore` of `*`,
as `.pytest_cache/` does), so neither `git add -A` nor the sync workflow commits it.

POSIX only (Linux, macOS): where `fcntl` is missing the lock is refused with a clear error
rather than silently skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from reconciler.core.errors import ReconcileError, os_error_line
from reconciler.core.files import loads_json

LOCK_DIR = ".reconcile"
LOCK_NAME = "lock"
POLL_SECONDS = 0.05
# A holder writes its record right after it gets the lock; a refused writer that reads an
# empty file waits this long for it before naming an unknown holder.
HOLDER_WAIT_SECONDS = 2.0


class Locked(ReconcileError):
    """Another process holds the config directory's lock (exit 1)."""


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    user: str
    command: str
    started: str  # UTC, ISO 8601

    def describe(self) -> str:
        return f"locked by pid {self.pid} on {self.host} since {self.started}"


def lock_path(config_dir: Path) -> Path:
    return Path(config_dir) / LOCK_DIR / LOCK_NAME


def _me(command: str) -> Holder:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Holder(os.getpid(), socket.gethostname(), user, command, now)


def _read_holder(fd: int) -> Holder | None:
    try:
        data = loads_json(os.pread(fd, 65536, 0).decode("utf-8"))
        return Holder(
            int(data["pid"]),
            str(data["host"]),
            str(data["user"]),
            str(data["command"]),
            str(data["started"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _refusal(fd: int, path: Path, timeout: float) -> Locked:
    deadline = time.monotonic() + HOLDER_WAIT_SECONDS
    holder = _read_holder(fd)
    while holder is None and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        holder = _read_holder(fd)
    who = holder.describe() if holder else f"locked by another process ({path})"
    detail = f" (user {holder.user}: {holder.command})" if holder else ""
    waited = f" after waiting {timeout:g} s" if timeout > 0 else ""
    return Locked(
        f"{who}{detail}{waited}: another reconcile is writing to ConnectWise from this "
        "config directory; nothing was done. Retry when it ends, or pass --lock-timeout "
        "SECONDS to wait for it"
    )


def _prepare(config_dir: Path) -> Path:
    path = lock_path(config_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        with contextlib.suppress(FileExistsError), ignore.open("x", encoding="utf-8") as fh:
            fh.write("# reconcile's lock; never committed\n*\n")
    return path


@contextlib.contextmanager
def config_lock(config_dir: Path, command: str, timeout: float = 0.0) -> Iterator[Holder]:
    """Hold the config directory's exclusive lock for the `with` body.

    Refused at once (`Locked`, naming the holder) when another process holds it, or after
    `timeout` seconds of waiting for it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        raise ReconcileError(
            "this platform has no fcntl: reconcile apply needs a POSIX system (Linux, macOS)"
        ) from None
    try:
        path = _prepare(config_dir)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _disk_refusal(exc, lock_path(config_dir)) from None
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _refusal(fd, path, timeout) from None
                time.sleep(POLL_SECONDS)
        me = _me(command)
        try:
            os.ftruncate(fd, 0)
            record = (json.dumps(asdict(me)) + "\n").encode("utf-8")
            if os.pwrite(fd, record, 0) != len(record):
                raise OSError(errno.ENOSPC, "short write", str(path))
        except OSError as exc:
            raise _disk_refusal(exc, path) from None
        try:
            yield me
        finally:
            with contextlib.suppress(OSError):  # the disk's state no longer matters here
                os.ftruncate(fd, 0)  # released: nobody to name any more
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _disk_refusal(exc: OSError, path: Path) -> ReconcileError:
    """A lock the disk will not hold (read-only, full, EIO): one line, nothing done."""
    if exc.filename is None:
        exc.filename = str(path)
    return ReconcileError(os_error_line(exc, "cannot take the lock") + "; nothing was done")
