"""Writing output files safely, and checking output paths before the long work that ends in writing them.

- `atomic_write(path, write, what)`: the bytes go to a temporary file in the same folder, are flushed to disk and
  renamed over `path` (`os.replace`). A crash or a full disk while writing leaves the previous file intact; a full
  disk is an OutputError saying so, naming the file. Checkpoints, exported weights and their JSON use it.
- `check_output_dir(path, key)` / `check_output_file(path, key)`: a folder where a file is needed (or the reverse,
  anywhere up the path), and a folder this user may not write into, are OutputErrors naming the path and the
  option or config key, raised before anything runs, not at the end of a training run.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Callable

from fineact.errors import OutputError

DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], what: str = "file",
                 then: str = "run again") -> Path:
    """Write `path` through `write(handle)` atomically; `what` names the file in errors ("checkpoint", ...) and
    `then` says what to do once there is space."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except Exception as raised:
        # torch.save reports a failed write as a RuntimeError of its own, the OSError only in the chain.
        exc = os_error_in(raised)
        if exc is None:
            raise
        if exc.errno in DISK_FULL:
            previous = (f"the previous {path.name} is intact" if path.exists() else
                        f"no {path.name} was written")
            raise OutputError(f"{what} {path}: the disk is full (no space left on device) while writing it; "
                              f"{previous} (files are written to a temporary file and renamed only when complete)."
                              f" Free space on the disk holding {path.parent} or choose another folder, then "
                              f"{then}") from None
        if exc.filename is None and exc.errno is not None:  # a write on a handle names no file: name this one
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise exc from None
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def os_error_in(exc: BaseException | None) -> OSError | None:
    """`exc` or the first OSError it was raised from or during."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def atomic_write_text(path: str | Path, text: str, what: str = "file") -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode()), what)


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_ancestors(path: Path, key: str) -> None:
    """Every existing folder above `path` must be a folder, and the nearest one writable."""
    existing = _first_existing(path.parent)
    if not existing.is_dir():
        raise OutputError(f"{key} {path}: {existing} is a file, but a folder is needed there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{key} {path}: permission denied: this user may not write into {existing}; choose "
                          "another path or fix the folder's permissions")


def check_output_dir(path: str | Path, key: str) -> Path:
    """`path` will be a folder fineact writes into: it is a folder (or absent), and can be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{key} {path}: is a file, but a folder is needed (fineact writes several files into "
                          "it); choose another path")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{key} {path}: permission denied: this user may not write into it; choose another "
                              "folder or fix its permissions")
        return path
    _check_ancestors(path, key)
    return path


def check_output_file(path: str | Path, key: str) -> Path:
    """`path` will be a file fineact writes: it is not a folder, its folder can be created and written."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{key} {path}: is a folder, but a file path is needed (e.g. {path / 'out'}"
                          f"{path.suffix or ''}); choose a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{key} {path}: permission denied: this user may not replace it")
    _check_ancestors(path, key)
    return path


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks (data files are compared by content, not location)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
