"""Argument checks shared by compare, sweep and the CLI: all run before any framework is imported."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import FIELD_CHECKS, Config
from .data import Problem
from .errors import BackendNotInstalledError, BackendResultError, ConfigError, UnknownBackendError
from .registry import backends as backend_infos

if TYPE_CHECKING:
    from . import vectorized


def as_list(value: Any) -> list[Any]:
    """``value`` as a list: a str or a number is one item, any other iterable its items."""
    if isinstance(value, (str, bytes, numbers.Number)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _each(value: Any, name: str, check: Callable[[str, Any], Any], what: str, example: str) -> list[Any]:
    """A non-empty list whose every item passes ``check``, the Config field's own validator."""
    items = as_list(value)
    if not items:
        raise ConfigError(name, items, f"a non-empty list of {what}", example)
    out = []
    for item in items:
        try:
            out.append(check(name, item))
        except ConfigError as err:
            raise ConfigError(name, err.got, err.accepted, example) from None
    return out


def lambda_list(value: Any, name: str = "lambdas") -> list[float]:
    """A non-empty list of finite numbers >= 0 (NumPy scalars and arrays accepted)."""
    return _each(value, name, FIELD_CHECKS["lambd"], "numbers >= 0",
                 "e.g. numpy.linspace(0, 10, 41), or on the command line --lambd 0:10:41")


def lambda_values(value: Any, name: str = "lambdas") -> list[float]:
    """:func:`lambda_list`, but an empty list is accepted (train_lambdas of no λ returns no runs)."""
    items = as_list(value)
    return lambda_list(items, name) if items else []


def seed_list(value: Any, name: str = "seeds") -> list[int]:
    """A non-empty list of seeds Config accepts (range(10) and NumPy integers accepted)."""
    return _each(value, name, FIELD_CHECKS["seed"], "integers >= 0",
                 "e.g. seeds=range(10), or on the command line --seeds 0-9")


def check_backends(names: Any, name: str = "backends") -> list[str]:
    """The requested backend names, each known and installed (default: every installed one).

    Reads only package metadata: imports no framework. Names that are installed are checked one by
    one (the other plugins are not loaded); the whole listing is read only for an error's message.
    """
    if names is not None and as_list(names) and all(_is_installed(n) for n in as_list(names)):
        return list(dict.fromkeys(as_list(names)))
    infos = {info.name: info for info in backend_infos()}
    installed = [n for n, info in infos.items() if info.installed]
    if names is None:
        return installed
    items = as_list(names)
    if not items:
        raise ConfigError(name, items, "a non-empty list of backend names",
                          f"installed: {', '.join(installed)}; or pass None for all of them")
    for item in items:
        if not isinstance(item, str) or item not in infos:
            close = difflib.get_close_matches(str(item), list(infos), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownBackendError(
                f"backend={item!r} is not a known backend: installed ones are {', '.join(installed)}{hint}"
            )
        if not infos[item].installed:
            raise BackendNotInstalledError(
                f"backend {item!r} is not installed here; install it with: {infos[item].install}"
            )
    return list(dict.fromkeys(items))


def _is_installed(name: Any) -> bool:
    """Whether ``name`` is a backend whose framework is installed (False for anything else)."""
    from .errors import WdlibError
    from .registry import _installed, backend_class

    if not isinstance(name, str):
        return False
    try:
        return _installed(backend_class(name)) is not None
    except WdlibError:
        return False


def check_result(name: str, result: Any, problem: Problem, config: Config, k: int) -> vectorized.Result:
    """``result`` of backend ``name``'s fit_plan, refused (BackendResultError) unless it has the shapes
    and real floating types of :data:`wdlib.vectorized.Result` for ``k`` λ: checked before it is kept."""
    evals = config.num_epochs // problem.eval_every
    expected = {"train_loss": (k, evals), "test_loss": (k, evals), "w": (k, problem.num_inputs, 1),
                "b": (k, 1)}

    def refuse(what: str) -> BackendResultError:
        return BackendResultError(f"backend {name!r} returned a wrong fit_plan result: {what}; expected "
                                  "(train_loss, test_loss, {'w': ..., 'b': ...}) of shapes "
                                  + ", ".join(f"{key} {shape}" for key, shape in expected.items()))

    if not isinstance(result, (tuple, list)) or len(result) != 3 or not isinstance(result[2], dict):
        raise refuse(f"a {type(result).__name__}")
    arrays = {"train_loss": result[0], "test_loss": result[1], **result[2]}
    if sorted(arrays) != sorted(expected):
        raise refuse(f"params named {sorted(result[2])}")
    for key, shape in expected.items():
        value = arrays[key]
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != shape:
            got = (f"shape {value.shape}, dtype {value.dtype}" if isinstance(value, np.ndarray)
                   else type(value).__name__)
            raise refuse(f"{key} of {got}")
    return result[0], result[1], result[2]


def check_compiled(name: str, result: Any, problem: Problem, config: Config) -> tuple[Any, Any, Any]:
    """``result`` of backend ``name``'s fit_compiled, refused (BackendResultError) unless it is
    (train_loss, test_loss, params) with one loss per evaluation and the model's parameter names."""
    from .model import parameter_names

    evals = config.num_epochs // problem.eval_every
    ok = isinstance(result, (tuple, list)) and len(result) == 3 and isinstance(result[2], dict)
    ok = ok and all(isinstance(a, np.ndarray) and a.shape == (evals,) for a in result[:2])
    if not ok or sorted(result[2]) != sorted(parameter_names(config)):
        raise BackendResultError(f"backend {name!r} returned a wrong fit_compiled result: expected "
                                 f"(train_loss ({evals},), test_loss ({evals},), params named "
                                 f"{parameter_names(config)})")
    return result[0], result[1], result[2]


def check_problem(problem: Problem, config: Config) -> None:
    """A Problem built by hand (``wdlib.fit``) checked before training: array types and shapes that
    agree, finite values, a batch order of valid row indices; and the run's memory estimate."""
    from .limits import check_run

    n, p = problem.n_train, problem.num_inputs
    m = len(problem.X_test)
    shapes = {"X_train": (n, p), "y_train": (n, 1), "X_test": (m, p), "y_test": (m, 1)}
    for name, shape in shapes.items():
        arr = getattr(problem, name)
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f" or arr.shape != shape:
            got = (f"shape {arr.shape}, dtype {arr.dtype}" if isinstance(arr, np.ndarray)
                   else type(arr).__name__)
            raise ConfigError(f"problem.{name}", got, f"a float array of shape {shape}",
                              "make the problem with wdlib.Problem.from_arrays(X, y)")
    for name, arr in [*((k, getattr(problem, k)) for k in shapes), *problem.init.items()]:
        if not _all_finite(arr):
            raise ConfigError(f"problem.{name}", "an array with NaN or infinite values", "finite numbers",
                              "drop or impute them before training")
    order = problem.batch_order
    if (not isinstance(order, np.ndarray) or order.dtype.kind not in "iu" or order.ndim != 2
            or order.shape[1] != n or (order.size and (order.min() < 0 or order.max() >= n))):
        raise ConfigError("problem.batch_order", getattr(order, "shape", type(order).__name__),
                          f"integer row indices from 0 to {n - 1}, one row per epoch, {n} per row")
    held = sum(a.nbytes for a in (*(getattr(problem, k) for k in shapes), order))
    check_run(config, held=held)  # the problem's arrays exist already: only what the run adds counts


def _all_finite(arr: np.ndarray, block: int = 2**22) -> bool:
    """``np.isfinite(arr).all()`` a block of rows at a time: no boolean copy the size of a large X."""
    if arr.size <= block:
        return bool(np.isfinite(arr).all())
    rows = max(1, block // max(1, arr[0].size if arr.ndim > 1 and len(arr) else 1))
    return all(bool(np.isfinite(arr[i : i + rows]).all()) for i in range(0, len(arr), rows)) \
        if arr.ndim else bool(np.isfinite(arr))


#: A finite training loss this many times the first one recorded flags the run as diverging.
GROWTH_WARNING = 1e6


_TINY = float(np.finfo(np.float64).tiny)


def warn_if_growing(train_loss: np.ndarray, config: Config) -> None:
    """Warn (:class:`wdlib.errors.DivergenceWarning`) when the training loss stayed finite but ended
    :data:`GROWTH_WARNING` times above its first value: the run diverges without having overflowed
    yet (e.g. lr too large for fewer epochs than overflow takes). One rule for every backend and engine."""
    finite = train_loss[np.isfinite(train_loss)]
    first = max(float(finite[0]), _TINY) if len(finite) else 0.0
    if len(finite) == len(train_loss) and len(finite) > 1 and finite[-1] > GROWTH_WARNING * first:
        from .errors import DivergenceWarning, warn

        warn(DivergenceWarning(
            f"the training loss grew from {finite[0]:.3g} to {finite[-1]:.3g} over the run "
            f"(backend={config.backend!r}, lambd={config.lambd}, lr={config.lr}): it is diverging; "
            "lower lr"), DivergenceWarning)


def check_supported(configs: Sequence[Config]) -> None:
    """What each config asks of its backend's class (a native recipe for ``rng="native"``, a concise
    mode, a fast path for ``engine="fused"``), checked before a framework is imported or a worker
    started: the rules :func:`wdlib.training.prepare_backend` applies, read from the classes only."""
    from .backend import CAPABILITIES
    from .named import check_current
    from .registry import backend_class

    seen: set[tuple[Any, ...]] = set()
    for config in configs:
        ask = (config.backend, config.rng, config.mode, config.engine, config.model, config.optimizer,
               config.model_fingerprint, config.penalty, config.penalty_fingerprint, bool(config.lambd))
        if ask in seen:
            continue
        seen.add(ask)
        check_current(config)
        cls = backend_class(config.backend)
        if config.rng == "native" and config.preset not in cls.native_presets:
            recipes = [f"{name}+{p}" for name in _installed() for p in backend_class(name).native_presets]
            raise ConfigError("rng", "native", f"'numpy': backend {config.backend!r} has no native "
                              f"recipe for preset {config.preset!r} (native recipes: "
                              f"{', '.join(recipes) or 'none'})")
        offered = cls.capabilities
        if config.mode == "concise" and "concise" not in offered:
            raise ConfigError("mode", "concise", f"'scratch': backend {config.backend!r} has no concise mode")
        if config.engine == "fused" and "fused" not in offered:
            raise ConfigError("engine", "fused", f"'auto' or 'eager': backend {config.backend!r} has no "
                              "fused path")
        if config.mode == "scratch" and config.model == "mlp" and "mlp" not in offered:
            raise ConfigError("model", config.model, f"'linear': backend {config.backend!r} has no "
                              "relu op for the MLP")
        if config.model not in ("linear", "mlp") and not cls.autodiff:
            from .model import make_model

            if not callable(getattr(make_model(config.model), "backward", None)):
                raise ConfigError("model", config.model, "a model with a backward(ops, params, X, dout) "
                                  f"method on backend {config.backend!r}, which has no autodiff "
                                  "(it trains by the model's hand-derived gradient)",
                                  "or a backend with autodiff: " + ", ".join(
                                      n for n in _installed() if backend_class(n).autodiff))
        penalty = _user_penalty(config)
        if not cls.autodiff and config.lambd and penalty is not None and not callable(
                getattr(penalty, "grad", None)):
            raise ConfigError("penalty", config.penalty, "a penalty with a grad(ops, w) method on backend "
                              f"{config.backend!r}, which has no autodiff", "or a backend with autodiff")
        if config.mode == "scratch" and config.optimizer != "sgd" and config.optimizer not in offered:
            raise ConfigError("optimizer", config.optimizer, f"'sgd': backend {config.backend!r} lacks "
                              f"the ops of {config.optimizer} ({', '.join(CAPABILITIES[config.optimizer])})")


def _user_penalty(config: Config) -> Any:
    """The user's own penalty object of ``config``, or None for a built-in one (which has a grad)."""
    from .penalty import BUILTIN_PENALTIES, PENALTIES

    return None if config.penalty in BUILTIN_PENALTIES else PENALTIES[config.penalty]


def _installed() -> list[str]:
    return [info.name for info in backend_infos() if info.installed]


def divergence_cause(config: Config, cli: bool = False) -> str:
    """What a DivergenceError says caused it, and what to change, in Python's words or (``cli``) the
    command line's. The data and the configuration's scales are checked before training
    (wdlib.config, wdlib.arrays), so what is left is a step size: the decay's step alone when it
    multiplies w by a factor beyond [-1, 1] (1 - lr * lambd for the L2 penalty), else the learning
    rate."""
    keep = "--set on_divergence=record" if cli else "on_divergence='record'"
    step = _decay_step(config)
    if step is not None:
        what, value, lower = step
        names = {"lambd": "--lambd", "lr": "--set lr=...", "wd": "--wd"} if cli else {}
        return (f"{what} = {value:.3g} > 2, so the decay's step alone makes w grow: lower "
                f"{' or '.join(names.get(n, n) for n in lower)}, or keep the diverged run with {keep}")
    smaller = f"{config.lr / 10:g}"
    return (f"lr={config.lr} is probably too large for the data's scale: lower it (e.g. "
            f"{'--set lr=' if cli else 'lr='}{smaller}), or keep the diverged run with {keep}")


def _decay_step(c: Config) -> tuple[str, float, tuple[str, ...]] | None:
    """The decay whose step alone multiplies w by 1 - s with s > 2: (how s is made, s, what to lower)."""
    if c.mode == "scratch" and c.penalty == "l2" and c.lr * c.lambd > 2:
        return "lr * lambd", c.lr * c.lambd, ("lambd", "lr")
    if c.decay == "independent" and c.wd > 2:
        return "wd (not scaled by lr)", c.wd, ("wd",)
    if (c.decay == "decoupled" or c.optimizer == "sgd") and c.lr * c.wd > 2:
        return "lr * wd", c.lr * c.wd, ("wd", "lr")
    return None
