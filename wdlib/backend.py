"""The backend interface and the registry that finds backends.

A backend is a small class (see :class:`Backend`) registered under the ``wdlib.backends`` entry-point
group by the distribution that ships it, or at run time with :func:`register_backend`. Loading the
entry point imports only the plugin module; the framework itself is imported by :meth:`Backend.load`
the first time the backend is used.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .config import Config
from .data import Problem
from .errors import (
    BackendLoadError,
    BackendNotInstalledError,
    ConfigError,
    UnknownBackendError,
)
from .model import Array, Objective, Params

if TYPE_CHECKING:  # imported by the fast-path methods when first used, not by `import wdlib`
    from . import vectorized

ENTRY_POINT_GROUP = "wdlib.backends"


@functools.cache
def _framework_version(distribution: str) -> str:
    """Installed version of ``distribution``, read once: importlib.metadata parses the METADATA file
    on every call (2-4 ms, paid by every Run before this cache)."""
    from importlib import metadata  # imported on first use: it costs ~30 ms of `import wdlib`

    return metadata.version(distribution)


def _plugin_install(name: str, prefix: str = "", note: str = "") -> str:
    """How to install a first-party plugin from wherever the user is: the checkout's folder as an
    absolute path when wdlib runs from a checkout, else the plugin's distribution name."""
    folder = Path(__file__).resolve().parent.parent / "backends" / name
    target = f"-e {folder}" if (folder / "pyproject.toml").is_file() else f"wdlib-{name}"
    return f"pip install {prefix}{target}{note}"


#: First-party plugins, listed so that wdlib.backends() can say how to install one that is missing.
KNOWN_PLUGINS = {
    "numpy": _plugin_install("numpy"),
    "torch": _plugin_install("torch", "torch==2.13.0 "),
    "mxnet": _plugin_install("mxnet", note="  # mxnet 1.9.1 needs numpy<2"),
    "jax": _plugin_install("jax"),
}


class Backend(ABC):
    """What a framework implements to run wdlib: arrays in and out, ``dot``/``sign``, and a gradient.

    Everything else (data, model, penalty, SGD step, training loop) lives in the core.
    """

    name: ClassVar[str]
    #: Distribution that provides the framework, e.g. "torch"; its version is read without importing it.
    framework: ClassVar[str]
    #: Command that installs the framework.
    install: ClassVar[str]

    def load(self) -> None:  # noqa: B027 - optional hook
        """Import the framework (called once, on first use)."""

    def version(self) -> str:
        return _framework_version(self.framework)

    def context(self, dtype: str) -> contextlib.AbstractContextManager[Any]:
        """Entered around a run; e.g. JAX enables float64 here, for the run only."""
        return contextlib.nullcontext()

    @abstractmethod
    def asarray(self, x: np.ndarray, dtype: str) -> Array:
        """A framework array holding a copy of ``x`` cast to ``dtype``."""

    @abstractmethod
    def to_numpy(self, x: Array) -> np.ndarray: ...

    @abstractmethod
    def take(self, x: Array, idx: Any) -> Array:
        """Rows ``idx`` of ``x``, ``idx`` a slice of what :meth:`index` returned."""

    def index(self, idx: np.ndarray) -> Any:
        """Row indices ``idx`` (NumPy int64, any shape) in the form :meth:`take` takes and that slices like
        ``idx``. The eager loop converts the whole batch order once per run, then slices it per
        minibatch, so a framework array is not built for every ``take``. Default: ``idx`` itself."""
        return idx

    @abstractmethod
    def dot(self, a: Array, b: Array) -> Array: ...

    @abstractmethod
    def sign(self, a: Array) -> Array: ...

    # Ops of the MLP (relu) and of the core optimizers (sqrt, zeros_like): a backend without them runs
    # the linear model with SGD only, and says so.

    def relu(self, a: Array) -> Array:
        raise ConfigError("model", "mlp", f"'linear': backend {self.name!r} has no relu op")

    def sqrt(self, a: Array) -> Array:
        raise ConfigError("optimizer", "adam", f"'sgd': backend {self.name!r} has no sqrt op")

    def zeros_like(self, a: Array) -> Array:
        raise ConfigError("optimizer", "momentum", f"'sgd': backend {self.name!r} has no zeros_like op")

    @abstractmethod
    def grad(self, objective: Objective, params: Params, X: Array, y: Array) -> Params:
        """Gradient of ``objective(self, params, X, y).sum()`` with respect to each parameter."""

    def make_grad(self, objective: Objective) -> Callable[[Params, Array, Array], Params]:
        """``grad(params, X, y)``: :meth:`grad` of ``objective``, as the eager loop calls it once per
        minibatch of one run. Default: :meth:`grad` with ``objective`` bound. A backend may prepare it
        once (JAX: the compiled gradient) or keep buffers from call to call (MXNet: the gradient arrays,
        so a result holds until the next call)."""
        return functools.partial(self.grad, objective)

    def supports_compiled(self, problem: Problem, config: Config) -> bool:
        """Whether :meth:`fit_compiled` runs ``config`` (any model and optimizer) as one compiled call with
        the eager loop's numbers; tried for ``engine="auto"`` when the fused path does not apply."""
        return False

    def fit_compiled(self, problem: Problem, config: Config) -> tuple[np.ndarray, np.ndarray, Params]:
        """``(train_loss, test_loss, final params)`` of the whole run compiled (JAX: one ``lax.scan``)."""
        raise NotImplementedError

    def norm_text(self, w: np.ndarray) -> str:
        """||w||_2 as the book's ``print`` shows it (the framework's norm and scalar type)."""
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged run's w: inf, quietly
            return str(float(np.linalg.norm(w)))

    # Optional capabilities. A backend overrides these to offer them; the core asks before use.

    #: How the loss of mode="concise" compares with the scratch loss: concise(wd, lr) trains exactly as
    #: scratch(lambd = wd / scale, lr = scale * lr). 2 for PyTorch's nn.MSELoss (no 1/2).
    concise_loss_scale: ClassVar[float] = 1.0
    #: How closely a float64 concise run matches its scratch equivalent (relative).
    concise_float64_rtol: ClassVar[float] = 1e-12

    def concise_step(self, config: Config, params: Params) -> Callable[[Params, Array, Array], Params]:
        """The update of ``mode="concise"``, starting from ``params``: the framework's own optimizer
        with weight decay ``config.wd`` on the weight (and the bias if ``config.decay_bias``)."""
        raise ConfigError("mode", "concise", f"'scratch': backend {self.name!r} has no concise mode")

    def concise_loss(self, params: Params, X: Array, y: Array) -> Array:
        """The framework's standard loss that ``mode="concise"`` trains on (e.g. ``nn.MSELoss``)."""
        raise ConfigError("mode", "concise", f"'scratch': backend {self.name!r} has no concise mode")

    #: Presets whose book this backend can reproduce with the framework's own RNG (``rng="native"``).
    native_presets: ClassVar[tuple[str, ...]] = ()

    def native_problems(self, configs: Sequence[Config]) -> list[Problem]:
        """The inputs of ``configs`` run one after another in one process, drawn from the framework's
        random streams exactly as the book's code draws them (seeded with ``configs[0].seed``)."""
        raise NotImplementedError

    # The fast path: a backend that implements fit_plan (the matrix form of wdlib.vectorized) gets
    # fused runs and lambda-vectorized runs for every config wdlib.vectorized.supports.

    def fit_plan(self, plan: vectorized.Plan) -> vectorized.Result:
        """Train every lambda column of ``plan`` at once (see :mod:`wdlib.vectorized`)."""
        raise NotImplementedError

    def supports_fused(self, config: Config) -> bool:
        """Whether :meth:`fused_fit` runs ``config`` with the eager loop's numbers (within rounding)."""
        from . import vectorized

        return type(self).fit_plan is not Backend.fit_plan and vectorized.supports(config)

    def fused_fit(
        self, problem: Problem, config: Config
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The whole run in one call: (train_loss, test_loss, final params) as NumPy arrays, with
        NumPy's BLAS on one thread (:func:`wdlib.fastpath.one_blas_thread`)."""
        from . import fastpath, vectorized

        with self.context(config.dtype), fastpath.one_blas_thread():
            result = self.fit_plan(vectorized.make_plan(problem, config))
        return vectorized.single(_checked(self.name, result, problem, config, 1))

    def fused_fit_lambdas(
        self, problem: Problem, config: Config, lambdas: Sequence[float]
    ) -> vectorized.Result:
        """Every lambda at once, as the columns of one run (see :func:`wdlib.train_lambdas`)."""
        from . import fastpath, vectorized

        with self.context(config.dtype), fastpath.one_blas_thread():
            result = self.fit_plan(vectorized.make_plan(problem, config, lambdas))
        return _checked(self.name, result, problem, config, len(lambdas))


def _checked(name: str, result: Any, problem: Problem, config: Config, k: int) -> vectorized.Result:
    from .validate import check_result  # validate imports this module

    return check_result(name, result, problem, config, k)


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`backends` reports about one backend."""

    name: str
    installed: bool
    version: str | None
    install: str

    def __str__(self) -> str:
        state = f"installed, {self.version}" if self.installed else f"not installed: {self.install}"
        return f"{self.name:<8} {state}"


_registered: dict[str, type[Backend]] = {}
_loaded: dict[str, Backend] = {}
_lock = threading.Lock()


def register_backend(cls: type[Backend], *, replace: bool = False) -> type[Backend]:
    """Register a backend class at run time (plugins normally use the entry point instead). Also
    forgets the entry points read so far, so a plugin installed since is found on the next lookup.

    A name already taken (a registered class, an installed plugin, a first-party backend such as
    "numpy", compare's reference) is refused unless ``replace=True``."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError("cls", cls, "a subclass of wdlib.Backend")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{cls.__name__}.name", name, "a non-empty str naming the backend")
    if not isinstance(replace, bool):
        raise ConfigError("replace", replace, "True or False")
    taken = name in _registered or name in KNOWN_PLUGINS or name in _entry_points()
    if taken and not replace and _registered.get(name) is not cls:
        raise ConfigError(f"{cls.__name__}.name", name, "a name no other backend has",
                          "choose another name, or pass replace=True to replace that backend")
    _registered[cls.name] = cls
    _loaded.pop(cls.name, None)
    _forget_entry_points()
    return cls


@functools.cache
def _entry_points() -> dict[str, Any]:
    """The ``wdlib.backends`` entry points, read once per process: importlib.metadata reads every
    installed distribution's metadata on each call, which cost more than a whole fused run of the
    chapter (see benchmarks/results.md). :func:`register_backend` and :func:`temporary_backend`
    forget them."""
    from importlib import metadata

    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


#: Classes loaded from entry points, by name (kept with the entry points they came from).
_plugin_classes: dict[str, type[Backend]] = {}


def _forget_entry_points() -> None:
    _entry_points.cache_clear()
    _plugin_classes.clear()


def backend_class(name: str) -> type[Backend]:
    """The class of backend ``name``, without importing its framework."""
    if not isinstance(name, str):
        raise ConfigError("backend", name, "a backend name such as 'numpy' (see wdlib.backends())")
    if name in _registered:
        return _registered[name]
    if name in _plugin_classes:
        return _plugin_classes[name]
    found = _entry_points()
    if name in found:
        try:
            cls = found[name].load()
        except Exception as err:  # an ImportError, but also whatever the plugin's module raises
            raise BackendLoadError(f"backend {name!r}: its plugin failed to load "
                                   f"({type(err).__name__}: {err})") from err
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise BackendLoadError(f"backend {name!r}: its entry point gives {cls!r}, not a wdlib.Backend")
        _plugin_classes[name] = cls
        return cls
    if name in KNOWN_PLUGINS:
        raise BackendNotInstalledError(
            f"backend {name!r}: its plugin is not installed; install it with: {KNOWN_PLUGINS[name]}"
        )
    names = sorted({*found, *_registered})
    close = difflib.get_close_matches(name, [*names, *KNOWN_PLUGINS], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownBackendError(
        f"backend={name!r} is not a known backend: installed ones are {', '.join(names)}{hint}"
    )


def _installed(cls: type[Backend]) -> str | None:
    from importlib.metadata import PackageNotFoundError

    try:
        return _framework_version(cls.framework)
    except PackageNotFoundError:
        return None


def get_backend(name: str) -> Backend:
    """The backend ``name``, its framework imported; a clear error if it cannot run here."""
    if not isinstance(name, str):
        raise ConfigError("backend", name, "a backend name such as 'numpy' (see wdlib.backends())")
    with _lock:
        if name in _loaded:
            return _loaded[name]
        cls = backend_class(name)
        if _installed(cls) is None:
            raise BackendNotInstalledError(
                f"backend {name!r} needs the package {cls.framework!r}, which is not installed; "
                f"install it with: {cls.install}"
            )
        backend = cls()
        try:
            backend.load()
        except Exception as err:  # ImportError, and RuntimeError, OSError, ... of a broken install
            raise BackendLoadError(
                f"backend {name!r}: {cls.framework} is installed but failed to import "
                f"({type(err).__name__}: {err}); reinstall it with: {cls.install}"
            ) from err
        _loaded[name] = backend
        return backend


def backends() -> list[BackendInfo]:
    """Every known backend (registered, plugin-installed or first-party): installed or not, version,
    and how to install it. Imports no framework."""
    names = sorted({*KNOWN_PLUGINS, *_entry_points(), *_registered})
    infos = []
    for name in names:
        try:
            cls = backend_class(name)
        except BackendNotInstalledError:
            infos.append(BackendInfo(name, False, None, KNOWN_PLUGINS[name]))
            continue
        version = _installed(cls)
        infos.append(BackendInfo(name, version is not None, version, cls.install))
    return infos


def installed_backends() -> list[str]:
    """Names of the backends whose framework is installed."""
    return [info.name for info in backends() if info.installed]


@contextlib.contextmanager
def temporary_backend(cls: type[Backend], *, replace: bool = False) -> Iterator[type[Backend]]:
    """Register ``cls`` for the duration of a ``with`` block (for tests and experiments); a name
    already taken is refused unless ``replace=True``, as by :func:`register_backend`."""
    previous = _registered.get(getattr(cls, "name", None))  # type: ignore[arg-type]
    register_backend(cls, replace=replace)
    try:
        yield cls
    finally:
        _registered.pop(cls.name, None)
        _loaded.pop(cls.name, None)
        _forget_entry_points()
        if previous is not None:
            register_backend(previous, replace=True)
