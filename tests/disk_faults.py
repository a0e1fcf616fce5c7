"""A disk that fails on cue, for the run-log fault matrix (issue 25).

`DiskFault` wraps `os.open`, `os.write` and `os.pwrite` (the calls every write of the lock,
the journal, the run record and INDEX.md goes through: `files.write_all`, `atomic_write`'s
temp file via `tempfile.mkstemp`, the lock's `pwrite`) and, once `armed()` is true, fails
those aimed at one component's files: ENOSPC or EIO at the write, a short write (half the
bytes really written), or EROFS at the open, as a read-only disk answers. Anything else
(pytest, the sandbox's sockets) passes through untouched.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from typing import Any

import pytest

_RUN_FILE = re.compile(r"\d{8}T\d{6}Z-(?:manual|scheduled)(?:-\d+)?\.(?:json|md)")
COMPONENTS: dict[str, Callable[[str], bool]] = {
    "lock": lambda p: p.endswith(os.path.join(".reconcile", "lock")),
    "journal": lambda p: p.endswith(".journal"),
    "record": lambda p: bool(_RUN_FILE.search(os.path.basename(p))),
    "INDEX": lambda p: "INDEX.md" in os.path.basename(p) or f"{os.sep}index{os.sep}" in p,
    "ledger": lambda p: "managed.json" in os.path.basename(p),
}
KINDS = ("ENOSPC", "EIO", "short", "EROFS")
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class DiskFault:
    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, component: str, kind: str, armed: Callable[[], bool]
    ) -> None:
        self.matches = COMPONENTS[component]
        self.kind = kind
        self.armed = armed
        self.fired = 0
        self.on_fire: Callable[[], None] = lambda: None
        self._fds: dict[int, str] = {}
        self._open, self._write, self._pwrite = os.open, os.write, os.pwrite
        monkeypatch.setattr(os, "open", self.open)
        monkeypatch.setattr(os, "write", self.write)
        monkeypatch.setattr(os, "pwrite", self.pwrite)

    def _fire(self, code: int, path: str) -> OSError:
        self.fired += 1
        self.on_fire()
        return OSError(code, os.strerror(code), path)

    def open(self, path: Any, flags: int, *args: Any, **kw: Any) -> int:
        name = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else ""
        hit = bool(name) and self.matches(name) and bool(flags & _WRITING)
        if hit and self.kind == "EROFS" and self.armed():
            raise self._fire(errno.EROFS, name)
        fd = self._open(path, flags, *args, **kw)
        if hit:
            self._fds[fd] = name
        else:  # descriptor numbers are reused: this one is no longer the component's
            self._fds.pop(fd, None)
        return fd

    def _fault(self, fd: int, data: Any) -> tuple[OSError | None, int]:
        name = self._fds.get(fd)
        if name is None or not self.armed():
            return None, 0
        if self.kind == "short":
            self.fired += 1
            self.on_fire()
            return None, max(1, len(data) // 2)
        return self._fire(getattr(errno, self.kind), name), 0  # EROFS too: remounted

    def write(self, fd: int, data: Any) -> int:
        error, short = self._fault(fd, data)
        if error is not None:
            raise error
        return self._write(fd, bytes(data)[:short] if short else data)

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        error, short = self._fault(fd, data)
        if error is not None:
            raise error
        return self._pwrite(fd, bytes(data)[:short] if short else data, offset)
