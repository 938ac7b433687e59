"""Where a sweep's runs execute: the tasks submitted and their runs stored as each finishes, the
default process pool (spawned workers that end with the driver), the check of a caller's executor,
the progress bar, and the translation of an executor's or worker's
failure into a WdlibError (the runs finished before it stay stored)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ExecutorFailedError, ResourceError, WdlibError
from .model import BUILTIN_MODELS, USER_MODELS
from .penalty import BUILTIN_PENALTIES, PENALTIES
from .store_format import config_key
from .sweep_worker import run_config, run_lambdas

if TYPE_CHECKING:  # imported where used: concurrent.futures and multiprocessing cost ~7 ms of `import wdlib`
    import concurrent.futures as cf

    from .config import Config
    from .store import Store

    Task = tuple[list[Config], list[Config]]


class ExecutorError(WdlibError, TypeError):
    """The ``executor`` given to a sweep is not a ``concurrent.futures.Executor``."""


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the driver dies, even by SIGKILL, instead of
    leaving it orphaned (a pool worker otherwise waits forever on its task queue)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def default_executor(workers: int | None = None) -> cf.ProcessPoolExecutor:
    """A process pool of ``workers`` (default: one per CPU), started with the "spawn" method.

    Why spawn: torch and JAX are not fork-safe once imported (their thread pools and locks do not
    survive ``fork``), and the driver may have imported them (``compare`` or a notebook). A spawned
    worker is a fresh interpreter that imports only what its runs need. "forkserver" is safe too,
    but it preloads the main module into its server, which then may import a framework before forking;
    and it does not exist on Windows. Measured here: 8 d2l runs on 2 workers take 1.53 s with spawn
    and 1.49 s with forkserver (start-up is paid once per worker), so safety costs nothing.
    """
    import concurrent.futures as cf
    import multiprocessing

    workers = workers or os.cpu_count() or 1
    return cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent, initargs=(os.getpid(),),
    )


def check_executor(executor: Any, workers: Any) -> None:
    import concurrent.futures as cf

    if executor is not None and not isinstance(executor, cf.Executor):
        raise ExecutorError(
            f"executor={executor!r} is not a concurrent.futures.Executor; pass e.g. "
            "concurrent.futures.ProcessPoolExecutor(), distributed.Client(...).get_executor(), "
            "or None for a local process pool"
        )
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError("workers", workers, "an integer >= 1, or None for one per CPU")
        if executor is not None:
            raise ConfigError("workers", workers, "None when an executor is given",
                              "size the executor you pass instead")


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool | None) -> Iterator[Callable[[int], None]]:
    """A ``tqdm.auto`` bar: a widget in a notebook, a text bar on a terminal's stderr; by default
    (``enabled=None``) shown only there, silent when nobody is watching (a pipe, a log, CI).
    Yields ``advance(runs=1)``."""
    if enabled is None:
        enabled = _interactive()
    if not enabled or total == 0:
        yield lambda runs=1: None
        return
    from tqdm.auto import tqdm

    widget = _is_notebook_bar(tqdm)
    options = {"display": False} if widget else {}
    with tqdm(total=total, desc="sweep", unit="run", file=sys.stderr, **options) as bar:
        shown = _display(bar.container) if widget else None
        yield lambda runs=1: bar.update(runs)
    if shown is not None:  # the saved notebook's text form (nbconvert, GitHub) shows the final state
        shown.update(bar.container)


def _is_notebook_bar(cls: type) -> bool:
    try:
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return False
    return issubclass(cls, notebook_tqdm)


def _display(widget: Any) -> Any:
    """``widget`` displayed with a handle that can replace it (its text form is taken at display
    time: without the update a saved notebook would show the bar at 0%)."""
    from IPython.display import display

    return display(widget, display_id=True)


def _interactive() -> bool:
    """True on a terminal (stderr is a tty) and in a Jupyter kernel (IPython with a kernel)."""
    stderr = sys.stderr
    if stderr is not None and hasattr(stderr, "isatty") and stderr.isatty():
        return True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


def translated(err: BaseException | None, what: str) -> BaseException | None:
    """A worker's or executor's failure as a WdlibError (the runs finished before stay stored)."""
    import concurrent.futures as cf

    kept = "the runs that finished are stored; rerun the sweep to compute the rest"
    if isinstance(err, MemoryError) and not isinstance(err, WdlibError):
        error = ResourceError(f"a sweep worker ran out of memory ({str(err) or type(err).__name__}): "
                              f"{kept}, with fewer workers or a smaller grid")
        error.exit_code = 1  # the machine ran out, not an estimate refused up front
        return error
    if isinstance(err, (cf.BrokenExecutor, RuntimeError)) and not isinstance(err, WdlibError):
        cause = f"{type(err).__name__}: {str(err) or 'a worker died'}"
        return ExecutorFailedError(f"the executor {what} ({cause}): {kept} (a worker killed by the system "
                                   "is often out of memory)")
    return err


def _submit(pool: cf.Executor, unit: list[Config], arrays: tuple[Any, ...] | None) -> cf.Future[Any]:
    """The task of ``unit``, with the user's own penalty and model objects (a fresh worker process
    knows only the built-in ones)."""
    penalty, model = _user_objects(c := unit[0])
    if len(unit) == 1:
        return pool.submit(run_config, dataclasses.asdict(c), arrays, penalty, model)
    return pool.submit(run_lambdas, dataclasses.asdict(c), [u.lambd for u in unit], arrays, penalty, model)


def _user_objects(c: Config) -> tuple[Any, Any]:
    """The user's own penalty and model objects of ``c`` (None for built-in ones)."""
    return (None if c.penalty in BUILTIN_PENALTIES else PENALTIES[c.penalty],
            None if c.model in BUILTIN_MODELS else USER_MODELS[c.model])


def execute(tasks: list[Task], db: Store, executor: cf.Executor | None, workers: int | None,
             progress: bool | None, arrays: tuple[Any, ...] | None = None) -> None:
    """Submit every task; store each task's missing runs, in one transaction, as soon as the task
    finishes.

    On the first failed task, the tasks not started are cancelled, those running are still stored,
    and the failure is raised.
    """
    import concurrent.futures as cf

    own = executor is None
    from .mainguard import defined_here, local_executor, unguarded_main_line  # processes or in-process

    pool = (local_executor(len(tasks), workers, unguarded_main_line(),
                           defined_here(o for unit, _ in tasks for o in _user_objects(unit[0])))
            if own else executor)
    futures: dict[cf.Future[Any], Task] = {}
    failure: BaseException | None = None
    try:
        try:
            futures = {_submit(pool, unit, arrays): (unit, missing) for unit, missing in tasks}
        except (RuntimeError, MemoryError) as err:  # a shut-down or broken executor refuses new tasks
            failure = translated(err, "could not take the sweep's tasks")
            raise failure from err
        with progress_bar(sum(len(missing) for _, missing in tasks), progress) as advance:
            for future in cf.as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    failure = failure or translated(future.exception(), "failed while running the sweep")
                    for pending in futures:
                        pending.cancel()
                    continue
                unit, missing = futures[future]
                result = future.result()
                records = result if isinstance(result, list) else [result]
                wanted = {config_key(c) for c in missing}
                new = [(c, r) for c, r in zip(unit, records, strict=True) if config_key(c) in wanted]
                db.put_many(new)
                advance(len(new))
        if failure is not None:
            raise failure
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)

