"""The backend interface: what a framework implements to run wdlib (:class:`Backend`).

The registry that finds backends (entry points, :func:`register_backend`, :func:`get_backend`) is
:mod:`wdlib.registry`; its names are importable from here too.
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .config import Config
from .data import Problem
from .errors import (
    ConfigError,
)
from .model import Array, Objective, Params

if TYPE_CHECKING:  # imported by the fast-path methods when first used, not by `import wdlib`
    from . import vectorized



@functools.cache
def _framework_version(distribution: str) -> str:
    """Installed version of ``distribution``, read once: importlib.metadata parses the METADATA file
    on every call (2-4 ms, paid by every Run before this cache)."""
    from importlib import metadata  # imported on first use: it costs ~30 ms of `import wdlib`

    return metadata.version(distribution)


class Backend(ABC):
    """What a framework implements to run wdlib: arrays in and out, ``dot``/``sign``, and a gradient.

    Everything else (data, model, penalty, SGD step, training loop) lives in the core.
    """

    name: ClassVar[str]
    #: Distribution that provides the framework, e.g. "torch"; its version is read without importing it.
    framework: ClassVar[str]
    #: Command that installs the framework.
    install: ClassVar[str]
    #: What the backend offers beyond the linear model trained by SGD, as data read from the class
    #: before its framework is imported (:func:`wdlib.validate.check_supported`): a subset of
    #: :data:`CAPABILITIES`. Set for each subclass from the optional methods it implements.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: Whether ``grad`` differentiates any model (autodiff); False when it is the models' hand-derived
    #: ``backward`` (NumPy), so a model of the user's own needs one there.
    autodiff: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.capabilities = frozenset(
            name for name, methods in CAPABILITIES.items()
            if all(getattr(cls, m) is not getattr(Backend, m) for m in methods)
        )

    def load(self) -> None:  # noqa: B027 - optional hook
        """Import the framework (called once, on first use)."""

    def version(self) -> str:
        return _framework_version(self.framework)

    def context(self, dtype: str) -> contextlib.AbstractContextManager[Any]:
        """Entered around a run; e.g. JAX enables float64 here, for the run only."""
        return contextlib.nullcontext()

    def run_context(self, config: Config) -> contextlib.AbstractContextManager[Any]:
        """Entered around the eager loop of ``config``: :meth:`context` of its dtype; a backend adds
        what depends on the run's sizes (PyTorch: how many threads its operators use)."""
        return self.context(config.dtype)

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

        return "fused" in self.capabilities and vectorized.supports(config)

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


#: Each optional capability and the methods a backend implements to offer it.
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "concise": ("concise_step", "concise_loss"),  # mode="concise": the framework's own optimizers
    "fused": ("fit_plan",),  # the fast path of wdlib.vectorized (and λ-vectorized runs)
    "compiled": ("supports_compiled", "fit_compiled"),  # whole runs as one compiled call
    "mlp": ("relu",),
    "momentum": ("zeros_like",),
    "adam": ("zeros_like", "sqrt"),
}


#: Names of :mod:`wdlib.registry` that are importable from this module too (``wdlib.backend.get_backend``).
_REGISTRY_NAMES = frozenset({
    "BackendInfo", "register_backend", "backend_class", "get_backend", "backends", "installed_backends",
    "temporary_backend", "KNOWN_PLUGINS", "ENTRY_POINT_GROUP",
})


def __getattr__(name: str) -> Any:  # PEP 562: the registry imports this module, so it is read lazily
    if name in _REGISTRY_NAMES:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
