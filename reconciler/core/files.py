"""The one atomic file write: readers see the old file or the whole new one, never a part,
and the new one survives a power cut once this returns (used for run records, INDEX.md,
saved plans and settings.yaml)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def atomic_write(
    path: Path, data: str | bytes | Iterable[str | bytes], *, keep_mode: bool = False
) -> None:
    """A temp file in the same directory (same filesystem), fsync, os.replace, then fsync
    the directory. `keep_mode`: the new file keeps the old one's permission bits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks: Iterable[str | bytes] = [data] if isinstance(data, str | bytes) else data
    mode = path.stat().st_mode & 0o7777 if keep_mode and path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            fh.flush()
            os.fsync(fh.fileno())
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
