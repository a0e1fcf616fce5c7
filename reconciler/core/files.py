"""The one atomic file write: readers see the old file or the whole new one, never a part,
and the new one survives a power cut once this returns (used for run records, INDEX.md,
saved plans and settings.yaml); and `write_all`, the one unbuffered write, which checks what
`os.write` returns (a short write on a full disk is an error, never silently a torn file).

Errors are OSError naming the file the caller meant (never the temp file), so the command
can say "runs/INDEX.md: No space left on device" in one line (DESIGN 13.5)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Pieces gathered into writes of about this size: one syscall per record customer was slow.
_CHUNK = 1 << 16


def write_all(fd: int, data: bytes, path: Path | str) -> None:
    """All of `data` to `fd` in one `os.write`, or OSError: a short write (a full disk,
    a quota) is reported, not followed by a second write that would tear a journal line."""
    written = os.write(fd, data)
    if written != len(data):
        raise OSError(errno.EIO, f"short write ({written} of {len(data)} bytes)", str(path))


def atomic_write(
    path: Path, data: str | bytes | Iterable[str | bytes], *, keep_mode: bool = False
) -> None:
    """A temp file in the same directory (same filesystem), fsync, os.replace, then fsync
    the directory. `keep_mode`: the new file keeps the old one's permission bits."""
    try:
        _replace(path, data, keep_mode)
    except OSError as exc:
        if exc.filename == str(path):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def _replace(path: Path, data: str | bytes | Iterable[str | bytes], keep_mode: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks: Iterable[str | bytes] = [data] if isinstance(data, str | bytes) else data
    mode = path.stat().st_mode & 0o7777 if keep_mode and path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            pending = bytearray()
            for chunk in chunks:
                piece = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
                if len(piece) >= _CHUNK:
                    # A large piece (a whole plan file: 12.5 MB at 10,000 customers) goes
                    # out as it is: gathered, then copied to bytes, it was held 3 times over.
                    if pending:
                        write_all(fd, bytes(pending), path)
                        pending.clear()
                    write_all(fd, piece, path)
                    continue
                pending += piece
                if len(pending) >= _CHUNK:
                    write_all(fd, bytes(pending), path)
                    pending.clear()
            if pending:
                write_all(fd, bytes(pending), path)
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not every platform can open a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# --- reading what is on disk: bounded (DESIGN 13.5) ---------------------------------------

# A run record at 10,000 customers is tens of megabytes; nothing we write comes near this.
MAX_JSON_BYTES = 1 << 30


def loads_json(data: str | bytes) -> Any:
    """JSON text -> value; ValueError (never RecursionError) for nesting too deep to parse:
    `[` x 3000 in a hand-edited file is a bad file, not a crash."""
    try:
        # Bytes as UTF-8 only (what we write): json.loads would guess UTF-16 from a BOM.
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except RecursionError:
        raise ValueError("nested too deeply to be a file this tool wrote") from None


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file, refused with ValueError when larger than `max_bytes` or malformed
    (OSError when it cannot be read)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{size:,} bytes, larger than the {max_bytes:,} accepted")
    return loads_json(path.read_bytes())


def content_digest(path: Path) -> str:
    """The key cached summaries are stored under: what the file holds, not its size or
    time (an edit can keep the size; a fresh checkout changes every time)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, is `root` or below it (symlinks resolved too)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
