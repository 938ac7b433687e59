"""Experiment configuration: the book's presets, overrides, and validation.

Every field is checked here, before any framework is imported or any data is generated.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .config_rules import check_combination, check_lambd
from .errors import ConfigError
from .field_checks import (
    backend_name,
    choice,
    dtype_name,
    finite,
    flag,
    integer,
    model,
    names,
    pairs,
    penalty,
    real,
    text,
    unit,
    widths,
)
from .named import FINGERPRINT_FIELDS, registered_fingerprint
from .optim import DECAYS, OPTIMIZER_ARGS

#: Largest seed accepted: every RNG wdlib or a book feeds it to (NumPy, torch, MXNet, Python) takes it.
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Config:
    """All inputs of one training run: data, model, penalty, optimizer, backend and numerics.

    Frozen and hashable; a run's store key is a digest of the fields that differ from their defaults.
    Build it with :func:`make_config` (or let :func:`wdlib.train` do it), which checks every field
    and their combinations once and names the field and the accepted values in a
    :class:`~wdlib.ConfigError`; ``config.replace(lambd=3)`` is a checked copy. The defaults are the d2l
    chapter's; ``preset="gluonbook"`` starts from the MXNet book's.
    """

    #: The book whose chapter gives the defaults: "d2l" or "gluonbook".
    preset: str = "d2l"
    #: The framework that trains: "numpy", "torch", "jax", "mxnet" or a registered backend.
    backend: str = "numpy"
    #: The chapter's synthetic data: n_train and n_test rows of num_inputs N(0, 1) features,
    #: y = X true_w + true_b + noise * N(0, 1) (true_w the same for every feature).
    n_train: int = 20
    n_test: int = 100
    num_inputs: int = 200
    true_w: float = 0.01
    true_b: float = 0.05
    noise: float = 0.01
    #: Minibatch SGD as the books run it: the summed gradient divided by batch_size, lr per step.
    batch_size: int = 5
    num_epochs: int = 100
    lr: float = 0.003
    #: The penalty lambd * penalty(w) in the loss (the books' weight decay), on the weight matrices.
    lambd: float = 0.0
    penalty: str = "l2"
    decay_bias: bool = False
    #: "float32" (the books') or "float64"; ``seed`` draws the data and the initial weights.
    dtype: str = "float32"
    seed: int = 0
    #: "scratch": the books' from-scratch penalty; "concise": the framework's optimizer weight decay ``wd``.
    mode: str = "scratch"
    wd: float = 0.0
    #: "numpy": inputs from wdlib's seeded NumPy Generator; "native": the framework's own random
    #: streams, consumed as the book's code consumes them (only where a backend has that recipe).
    rng: str = "numpy"
    #: "eager": autodiff step by step; "fused": the backend's fast path; "auto": fused where exact.
    engine: str = "auto"
    #: On a NaN/inf loss: "raise" a DivergenceError, or "record" the run as diverged and stop.
    on_divergence: str = "raise"
    #: "linear" (the chapter's X w + b), "mlp" (ReLU layers of widths ``hidden``, d2l's MLP), or the
    #: name of a model of your own (``model=MyModel()`` registers it: wdlib.model.register_model).
    model: str = "linear"
    hidden: tuple[int, ...] = ()
    #: The core optimizer (wdlib.optim): "sgd" (the books' step), "momentum" or "adam", with
    #: ``optimizer_args`` overriding its defaults (wdlib.optim.OPTIMIZER_ARGS), as sorted (name, value).
    optimizer: str = "sgd"
    optimizer_args: tuple[tuple[str, Any], ...] = ()
    #: In mode="scratch", how the optimizer's weight decay ``wd`` acts (the loss penalty is ``lambd``):
    #: "coupled" (added to the gradient), "decoupled" (p -= lr wd p, AdamW) or "independent" (p -= wd p).
    decay: str = "coupled"
    #: Parameters the penalty and decay act on; () = every weight matrix (and biases if decay_bias).
    penalize: tuple[str, ...] = ()
    #: Mixing of penalty="elastic_net": l1_ratio * ||w||_1 + (1 - l1_ratio) * ||w||^2 / 2.
    l1_ratio: float = 0.5
    #: "synthetic" (the chapter's data, drawn from ``seed``), "diabetes" (bundled, wdlib[datasets]) or
    #: "arrays" (the user's own, via ``data=``); n_train, n_test and num_inputs then follow the data.
    dataset: str = "synthetic"
    #: sha256 of the arrays behind a non-synthetic dataset (part of the store key), set by wdlib.
    data_fingerprint: str = ""
    #: Share of the examples held out as the test set when the data come without one.
    test_fraction: float = 0.25
    #: sha256 of a model / penalty of your own (its class's source and settings; part of the store
    #: key, so a run is found again only for the same object), set by wdlib: :mod:`wdlib.named`.
    model_fingerprint: str = ""
    penalty_fingerprint: str = ""

    def __post_init__(self) -> None:
        """A Config built directly (``Config(lr=-1.0)``, ``dataclasses.replace``) is checked as
        :func:`make_config` checks it, with the same field checks; make_config itself builds its
        already-checked Config without passing here again (:func:`_trusted`)."""
        values = {f.name: getattr(self, f.name) for f in _FIELDS}
        given = {k: v for k, v in values.items() if v != _DEFAULT_VALUES.get(k, v)}
        for name, value in _checked(values, given).items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some fields changed (the model's and penalty's fingerprints are
        those of the objects registered under their names now)."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in _REDERIVED}
        return make_config(**{**fields, **changes})


_FIELDS = dataclasses.fields(Config)
#: Fields :meth:`Config.replace` derives again rather than copies.
_REDERIVED = ("model_fingerprint", "penalty_fingerprint")
_DEFAULT_VALUES: dict[str, Any] = {}


def _trusted(values: dict[str, Any]) -> Config:
    """A Config of ``values`` already checked (by :func:`_checked`), without checking them again."""
    config = object.__new__(Config)
    config.__dict__.update(values)  # frozen: no __setattr__, but the instance dict is there
    return config


#: The two books' settings. gluonbook's code uses noise 0.01 (its text says 0.1) and 10 epochs of batch 1.
PRESETS: dict[str, dict[str, Any]] = {
    "d2l": {},
    "gluonbook": {"batch_size": 1, "num_epochs": 10},
}

DTYPES = ("float32", "float64")
MODES = ("scratch", "concise")
RNGS = ("numpy", "native")
ENGINES = ("auto", "eager", "fused")
ON_DIVERGENCE = ("raise", "record")
DATASETS = ("synthetic", "diabetes", "arrays")


FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "preset": choice(*PRESETS),
    "backend": backend_name,
    "n_train": integer(1),
    "n_test": integer(1),
    "num_inputs": integer(1),
    "true_w": finite,
    "true_b": finite,
    "noise": real(),
    "batch_size": integer(1),
    "num_epochs": integer(1),
    "lr": real(positive=True),
    "lambd": real(),
    "penalty": penalty,
    "decay_bias": flag,
    "dtype": dtype_name(*DTYPES),
    "seed": integer(0, MAX_SEED),
    "mode": choice(*MODES),
    "wd": real(),
    "rng": choice(*RNGS),
    "engine": choice(*ENGINES),
    "on_divergence": choice(*ON_DIVERGENCE),
    "model": model,
    "hidden": widths,
    "optimizer": choice(*OPTIMIZER_ARGS),
    "optimizer_args": pairs,
    "decay": choice(*DECAYS),
    "penalize": names,
    "l1_ratio": unit(open_ends=False),
    "dataset": choice(*DATASETS),
    "data_fingerprint": text,
    "test_fraction": unit(open_ends=True),
    "model_fingerprint": text,
    "penalty_fingerprint": text,
}


_DEFAULT_VALUES.update({f.name: f.default for f in _FIELDS})
#: The defaults of every field (the dataclass's own, not checked again at each use).
DEFAULTS = _trusted(dict(_DEFAULT_VALUES))


#: Names users reach for, and the field that means it.
ALIASES = {"weight_decay": "wd", "lambda_": "lambd", "lam": "lambd", "epochs": "num_epochs",
           "learning_rate": "lr", "lambdas": "lambd", "hidden_sizes": "hidden"}


def make_config(preset: str = "d2l", **overrides: Any) -> Config:
    """The preset's settings with ``overrides`` applied, every field validated."""
    FIELD_CHECKS["preset"]("preset", preset)
    unknown = sorted(set(overrides) - set(FIELD_CHECKS))
    if unknown:
        close = [ALIASES[unknown[0]]] if unknown[0] in ALIASES else difflib.get_close_matches(
            unknown[0], FIELD_CHECKS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else ""
        if unknown[0] in ("data", "test"):
            hint = ("a Config holds only the arrays' fingerprint: pass them to wdlib.train, compare or "
                    "sweep (data=(X, y)), or build a Problem: wdlib.Problem.from_arrays(X, y)")
        elif unknown[0] == "config":
            hint = "run a Config with wdlib.train_sequence([config]) or wdlib.fit(backend, problem, config)"
        raise ConfigError(unknown[0], overrides[unknown[0]], "a field of wdlib.Config: "
                          + ", ".join(FIELD_CHECKS), hint)
    values = {**_DEFAULT_VALUES, **PRESETS[preset], **overrides, "preset": preset}
    return _trusted(_checked(values, overrides))


def _checked(values: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Every field of ``values`` checked and normalized, and their combination checked; ``given``
    are the fields the user set (those derived from a bundled data set must agree with it)."""
    checked = {name: FIELD_CHECKS[name](name, value) for name, value in values.items()}
    if checked["dataset"] == "diabetes":
        _derive(checked, given, _bundled_fields(checked), f"dataset={checked['dataset']!r}")
    for field, key in FINGERPRINT_FIELDS.items():
        _derive(checked, given, {key: registered_fingerprint(field, checked[field])},
                f"{field}={checked[field]!r}")
    if checked["model"] == "mlp" and not checked["hidden"]:
        checked["hidden"] = (256,)  # d2l's num_hiddens
    if checked["batch_size"] > checked["n_train"]:
        raise ConfigError(
            "batch_size", checked["batch_size"], f"an integer from 1 to n_train={checked['n_train']}"
        )
    check_combination(checked, DEFAULTS)
    return checked


def _derive(checked: dict[str, Any], given: dict[str, Any], derived: dict[str, Any], source: str) -> None:
    """Set the fields that follow from ``source`` (the data, a registered model); a value the user
    gave must agree (one source of truth)."""
    for name, value in derived.items():
        if name in given and checked[name] != value:
            raise ConfigError(name, given[name], f"{value!r} (or leave it out): it follows from {source}")
        checked[name] = value


def _bundled_fields(c: dict[str, Any]) -> dict[str, Any]:
    from .datasets import dataset_shape

    n, p, fingerprint = dataset_shape(c["dataset"])
    from .arrays import split_sizes

    n_test = split_sizes(n, c["test_fraction"])[1]
    return {"n_train": n - n_test, "n_test": n_test, "num_inputs": p, "data_fingerprint": fingerprint}


def with_lambdas(config: Config, lambdas: Iterable[float]) -> list[Config]:
    """``config.replace(lambd=λ)`` for each λ of ``lambdas``, checking only what λ takes part in
    (its own value, and the combinations it enters): the other fields are ``config``'s, already
    checked. A grid of 64 λ builds 64 Configs in the time of about one full check."""
    values = {f.name: getattr(config, f.name) for f in _FIELDS}
    configs = []
    for lam in lambdas:
        checked = {**values, "lambd": FIELD_CHECKS["lambd"]("lambd", lam)}
        check_lambd(checked)
        configs.append(_trusted(checked))
    return configs
