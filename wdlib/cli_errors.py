"""How the ``wdlib`` command ends on an error: one line on stderr and an exit status, no traceback.

- 2: a mistake of the user (a bad option, a path that cannot be written, a backend not installed,
  a diverged run, a store that is not a wdlib store): the line says what and how to fix it.
- 1: a fault of the machine (a full disk, a permission the OS refused while writing, a store locked
  by another process, no memory, a framework or data package whose installation is broken, a worker
  that died) or
  an unexpected error (a bug): the line names it; for a bug it says to rerun with ``--debug``.
- 130: interrupted (Ctrl-C).

``--debug`` (before or after the subcommand) re-raises instead, so Python prints the traceback.
An error class may set ``exit_code`` (1 or 2) to choose its status.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from collections.abc import Collection

from .errors import BackendLoadError, WdlibError

USER_MISTAKE, MACHINE_FAULT, INTERRUPTED = 2, 1, 130
_DEBUG_HELP = "on an error, show the full traceback (for a bug report)"
#: The OS errors of a full disk, and of a permission the OS refused.
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def add_debug_option(parser: argparse.ArgumentParser, subparsers: argparse._SubParsersAction) -> None:
    """``--debug`` on the command and on every subcommand (``wdlib --debug train`` or
    ``wdlib train --debug``)."""
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    for sub in subparsers.choices.values():  # SUPPRESS: a subcommand's default keeps `wdlib --debug`
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined with "; " (a framework's message may span several)."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _fault(err: WdlibError) -> bool:
    """A WdlibError that reports the machine: a broken framework or data package (a locked store or a
    full disk set ``exit_code``: wdlib.store_file.StoreFaultError)."""
    from .datasets import DatasetChangedError

    chosen = getattr(err, "exit_code", None)
    if chosen is not None:
        return chosen == MACHINE_FAULT
    return isinstance(err, (BackendLoadError, DatasetChangedError))


def _os_error(err: OSError) -> str:
    where = f" {err.filename!s}" if err.filename else ""
    what = err.strerror or str(err) or type(err).__name__
    if err.errno in _FULL:
        return f"the disk is full: could not write{where} ({what}); free some space and rerun"
    if err.errno in _DENIED:
        return f"permission denied by the system:{where} ({what}); choose a writable path and rerun"
    name = errno.errorcode.get(err.errno or 0, type(err).__name__)
    return f"the system refused an operation on{where or ' a file'} ({what}, {name}); rerun with --debug " \
           "for details"


def _broken_pool(err: BaseException) -> bool:
    process = sys.modules.get("concurrent.futures.process")
    return process is not None and isinstance(err, process.BrokenProcessPool)


def status_and_line(err: BaseException) -> tuple[int, str | None]:
    """The exit status for ``err`` and the line to print (None: print nothing)."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(err, WdlibError):
        return (MACHINE_FAULT if _fault(err) else USER_MISTAKE), one_line(str(err))
    if isinstance(err, BrokenPipeError):  # `wdlib ... | head`: the reader left; nothing to say
        return MACHINE_FAULT, None
    if isinstance(err, MemoryError):
        return MACHINE_FAULT, ("out of memory (MemoryError); use a smaller problem or fewer workers, "
                               "or free some memory")
    if isinstance(err, OSError):
        return MACHINE_FAULT, _os_error(err)
    if _broken_pool(err):
        return MACHINE_FAULT, ("a worker process died (killed, or out of memory); rerun: the runs "
                               "stored so far are kept")
    text = one_line(str(err))
    if len(text) > 300:
        text = text[:297] + "..."
    return MACHINE_FAULT, (f"unexpected {type(err).__name__}" + (f": {text}" if text else "")
                           + "; rerun with --debug for the traceback, and please report it")


#: ``name='text'``, ``name=number``, ``name=True/False`` or ``name=(8, 4)`` (widths) in a message
#: written for Python callers (not one already in command-line words: ``--set lr=0.3``).
_PYTHON_SETTING = re.compile(r"(?<!--set )(?<!--opt )(?<![\w-])(--)?([a-z][a-z0-9_-]*)="
                             r"(?:'([^'\s]*)'|(-?\d[\w.+-]*\b|True\b|False\b|\.\.\.)|\((\d+(?:, \d+)*),?\))")


_OPTIMIZER_ARGS = re.compile(r"optimizer_args=\{'(\w+)': ([^{}]*)\}")


def cli_words(text: str, options: Collection[str]) -> str:
    """A message written for Python callers (``use model='mlp'``), in the words of a command that has
    ``options``: ``--model mlp``, or ``--set lr=0.3`` for a Config field without an option of its own.
    Settings the command has no way to give are left as they are."""
    from .config import FIELD_CHECKS

    def spelled(match: re.Match[str]) -> str:
        dashes, name, value = match[1], match[2], next(v for v in match.groups()[2:] if v is not None)
        if match[5] is not None:
            value = "x".join(value.split(", "))  # --hidden 128x64
        if dashes:  # already an option's name: --lambd='0:10:x'
            return f"--{name} {value}"
        for option in (f"--{name.replace('_', '-')}", f"--{name}s"):
            if option in options and value not in ("True", "False"):
                return f"{option} {value}"
        if name in FIELD_CHECKS and "--set" in options:
            return f"--set {name}={value}"
        return match[0]

    if "--opt" in options:  # optimizer_args={'beta': 0.9}: --opt beta=0.9
        text = _OPTIMIZER_ARGS.sub(lambda m: f"--opt {m[1]}={m[2]}", text)
    text = re.sub(r"the Config field (\w+)", lambda m: f"--{m[1]}" if f"--{m[1]}" in options
                  else f"--set {m[1]}=..." if "--set" in options else m[0], text)
    return _PYTHON_SETTING.sub(spelled, text)


def report(err: BaseException, debug: bool, options: Collection[str] = ()) -> int:
    """Print ``err``'s one line to stderr and return its exit status; with ``debug``, re-raise it.
    ``options``: the command's options, to say a WdlibError's settings in them (:func:`cli_words`)."""
    if isinstance(err, SystemExit):  # --help, --version
        return err.code if isinstance(err.code, int) else 0
    if debug:
        raise err
    status, line = status_and_line(err)
    if line is not None and options and isinstance(err, WdlibError):
        line = cli_words(line, options)
    if isinstance(err, BrokenPipeError):
        _silence_stdout()
    if line is not None:
        print(f"wdlib: error: {line}" if status != INTERRUPTED else f"wdlib: {line}", file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured): nothing to silence
        pass
