"""Whether worker processes can be started from here: the ``if __name__ == "__main__":`` question.

A sweep's default process pool starts its workers with "spawn" (see
:func:`wdlib.sweep.default_executor`): each worker is a fresh interpreter that first re-runs the
main script, under the name ``__mp_main__``. In a script whose sweep call is not under
``if __name__ == "__main__":``, that re-run calls the sweep again inside every worker, and each one
fails (Python's "An attempt has been made to start a new process before the current process has
finished its bootstrapping phase", once per worker). Notebooks, ``python -c`` and the REPL have no
script to re-run, and a call inside the guard (directly or through functions it calls) is safe.

:func:`unguarded_main_line` finds the one unsafe case before any worker starts: the line of the
main script's top-level code, outside the guard, that led to this call. The sweep then runs in the
calling process instead (see :func:`local_executor`), and says so once.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import concurrent.futures as cf


class InProcessWarning(UserWarning):
    """A sweep ran in the calling process because its script has no ``__main__`` guard."""


def unguarded_main_line() -> int | None:
    """The line of the main script's top-level code (outside ``if __name__ == "__main__":``) that
    is running now, or None when spawned workers would not re-run the caller (no script, a call
    from inside the guard, or a source that cannot be read)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or not os.path.isfile(path):
        return None
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    line = frame.f_lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test):
            if node.body and node.body[0].lineno <= line <= (node.body[-1].end_lineno or line):
                return None
    return line


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def defined_here(objects: Iterable[Any]) -> str | None:
    """The name of the first of ``objects`` (a user's models and penalties) that a spawned worker
    cannot unpickle: its class is defined in a ``__main__`` with no script to re-run (a notebook,
    the REPL, ``python -c``)."""
    if getattr(sys.modules.get("__main__"), "__file__", None) is not None:
        return None
    return next((obj.name for obj in objects if type(obj).__module__ == "__main__"), None)


def local_executor(tasks: int, workers: int | None, line: int | None, here: str | None = None) -> cf.Executor:
    """The executor a sweep uses when none is given: the spawn process pool (one worker per CPU, at
    most one per task), or one thread of the calling process, which runs the tasks one after
    another, from a script's unguarded top-level code (``line``) or for a model or penalty defined
    in a notebook (``here``, its name: :func:`defined_here`)."""
    import concurrent.futures as cf

    from .sweep import default_executor

    count = min(workers or os.cpu_count() or 1, tasks)
    if line is None and here is None:
        return default_executor(count)
    if count > 1:
        from .errors import warn

        why = (f"{here!r} is defined in this notebook or session, whose classes worker processes "
               "cannot import; define its class in a module (a .py file beside the notebook)"
               if here is not None else f"the script's line {line} is not under `if __name__ == "
               "\"__main__\":`, which worker processes need; add the guard")
        warn(f"sweep: running in this process, one task at a time: {why} to use {count} processes",
             InProcessWarning)
    return cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="wdlib-sweep")
