"""The one boundary every `fineact` subcommand runs behind: what reaches the user, and the exit status.

    0  done
    1  done, with problems reported (predict: some files unreadable; check-data: some videos unreadable)
    2  a user error: a bad argument, file, config key or value, or a machine that cannot do what was asked
       (disk full, permission denied, no GPU); one message naming the file or key, no traceback
    70 a bug in fineact (EX_SOFTWARE): the traceback, and a line asking for a bug report

User mistakes are fineact errors (fineact/errors.py) raised where the mistake is seen. Here the known failure
classes of the operating system and the libraries become such messages too (`describe_os_error`), so a
traceback always means a bug, never a user mistake. No message relays PyTorch's advice to load a file with
`weights_only=False` (that would let the file run code).
"""

from __future__ import annotations

import errno
import sys
import traceback
from typing import Any, Callable

from fineact.errors import FineactError
from fineact.files import os_error_in

EXIT_DONE, EXIT_PROBLEMS, EXIT_USER_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 70, 130
# Failures of the machine, not of fineact, even when a library reports them as another exception.
ENVIRONMENT_ERRORS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EACCES, errno.EPERM, errno.EROFS}
BUG_REPORT = ("this is a bug in fineact, not a mistake in what you gave it: please report it with the "
              "traceback above, the command line and `fineact --version`")


def run_command(command: str, handler: Callable[[Any], int], args: Any) -> int:
    """Run one subcommand's handler; known failures become one line on stderr and exit status 2."""
    try:
        return handler(args)
    except FineactError as exc:
        return _user_error(command, str(exc))
    except OSError as exc:
        return _user_error(command, describe_os_error(exc))
    except KeyboardInterrupt:
        print(f"fineact {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the boundary: anything else is a bug, reported as one
        wrapped = os_error_in(exc)  # torch's writers report a failed write as a RuntimeError raised during it
        if wrapped is not None and wrapped.errno in ENVIRONMENT_ERRORS:
            return _user_error(command, describe_os_error(wrapped))
        if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA), without importing torch
            return _user_error(command, f"out of GPU memory ({str(exc).splitlines()[0][:160]}); lower "
                                        "data.batch_size, or use trainer.precision=bf16-mixed")
        traceback.print_exc()
        print(f"fineact {command}: {BUG_REPORT}", file=sys.stderr)
        return EXIT_BUG


def _user_error(command: str, message: str) -> int:
    print(f"fineact {command}: error: {scrub(message)}", file=sys.stderr)
    return EXIT_USER_ERROR


def scrub(message: str) -> str:
    """The message without any advice to retry torch.load with weights_only=False."""
    lines = [line for line in message.splitlines() if "weights_only" not in line or "False" not in line]
    return "\n".join(lines)


def describe_os_error(exc: OSError) -> str:
    """An operating-system error as a message naming the file and what to do."""
    name = exc.filename if exc.filename is not None else "(a file)"
    other = f" -> {exc.filename2}" if getattr(exc, "filename2", None) else ""
    where = f"{name}{other}"
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return (f"{where}: the disk is full (no space left on device) while writing it; free space or choose "
                "another folder, then run again")
    if code in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied; fix its permissions or choose another path"
    if code == errno.EROFS:
        return f"{where}: the file system is read-only; choose a path on a writable disk"
    if code == errno.ENOENT:
        return f"{where}: not found"
    if code == errno.EISDIR:
        return f"{where}: is a folder, but a file is needed"
    if code == errno.ENOTDIR:
        return f"{where}: a file is in the way where a folder is needed"
    if code == errno.ENAMETOOLONG:
        return f"{where}: the path is too long for this file system"
    return f"{where}: {exc.strerror or exc}"
