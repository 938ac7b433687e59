"""One exception type per kind of mistake, all under :class:`WdlibError`."""

from __future__ import annotations

import os
import sys
import warnings

_WDLIB_DIR = os.path.abspath(os.path.dirname(__file__)) + os.sep


class WdlibError(Exception):
    """Base of every error wdlib raises on purpose."""


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message: an array by its shape and dtype, anything else cut at ``limit``."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None and len(shape) > 0:
        return f"<{type(value).__name__} of shape {tuple(shape)}, dtype {dtype}>"
    if isinstance(value, tuple) and any(hasattr(v, "shape") for v in value):  # data=(X, y)
        return "(" + ", ".join(short_repr(v, limit) for v in value) + ")"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


class ConfigError(WdlibError, ValueError):
    """A configuration field has a value outside what it accepts."""

    def __init__(self, field: str, got: object, accepted: str, fix: str = "") -> None:
        self.field, self.got, self.accepted, self.fix = field, got, accepted, fix
        msg = f"{field}={short_repr(got)} is not valid: expected {accepted}"
        super().__init__(msg + (f"; {fix}" if fix else ""))

    def __reduce__(self) -> tuple:  # picklable, e.g. raised in a sweep worker process
        return type(self), (self.field, self.got, self.accepted, self.fix)


class UnknownBackendError(WdlibError, ValueError):
    """No backend of that name is registered."""


class BackendNotInstalledError(WdlibError, ImportError):
    """The backend is known but its framework (or plugin) is not installed."""


class BackendLoadError(WdlibError, ImportError):
    """The framework is installed but failed to import."""


class DivergenceError(WdlibError, ArithmeticError):
    """The loss became NaN or infinite during training."""

    def __init__(self, message: str, *, epoch: int, last_loss: float) -> None:
        super().__init__(message)
        self.epoch, self.last_loss = epoch, last_loss

    def __reduce__(self) -> tuple:
        return _divergence_error, (str(self), self.epoch, self.last_loss)


def _divergence_error(message: str, epoch: int, last_loss: float) -> DivergenceError:
    return DivergenceError(message, epoch=epoch, last_loss=last_loss)


class ResourceError(WdlibError, MemoryError):
    """A run, a grid or a sweep plan would need more memory than the machine has (estimated before
    anything is allocated), or a worker ran out of memory."""


class BackendResultError(WdlibError, RuntimeError):
    """A backend returned results of the wrong shape or type (checked before anything is stored)."""

    exit_code = 1  # a fault of the backend's code, not of the user's input


class ExecutorFailedError(WdlibError, RuntimeError):
    """The executor of a sweep broke or was shut down; the runs finished before are stored."""

    exit_code = 1


class DivergenceWarning(RuntimeWarning):
    """The loss stayed finite but grew by many orders of magnitude: the run is diverging."""


#: Where a worker process's frames below wdlib live (the standard library's process pools).
_POOL_DIRS = tuple(os.path.join(os.path.dirname(os.path.abspath(os.__file__)), d) for d in
                   ("concurrent", "multiprocessing"))


def warn(message: str | Warning, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the first caller outside wdlib: the warning names the user's own line
    (however deep in wdlib it was raised), and its once-per-location filter is per user line."""
    frame, level = sys._getframe(1), 2  # stacklevel 1 is this function, 2 its caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_WDLIB_DIR):
        frame, level = frame.f_back, level + 1
    if frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_POOL_DIRS):
        # a sweep's worker process: no line of the user's here, so name the worker, not the pool
        warnings.warn_explicit(message, category, "<wdlib sweep worker>", 0)
    else:
        warnings.warn(message, category, stacklevel=level)
