"""What runs in a sweep's worker process (or a Dask worker): one configuration, or one batched λ
grid, trained from plain data and returned as the records the store keeps; no database access."""

from __future__ import annotations

from typing import Any

from .config import make_config, with_lambdas
from .errors import WdlibError
from .model import register_model
from .penalty import register_penalty
from .store_format import result_record


class RunFailedError(WdlibError, RuntimeError):
    """A run of a sweep failed in its worker; the message names the run and the cause.

    A plain one-message exception, so that it survives pickling back from a worker process (an error
    whose constructor takes several arguments, like ConfigError, does not).
    """



def run_config(fields: dict[str, Any], arrays: tuple[Any, ...] | None = None,
               penalty: Any = None, model: Any = None) -> dict[str, Any]:
    """Train one configuration (given as a dict of Config fields, with the user's ``arrays`` for
    ``dataset="arrays"`` and the user's ``penalty`` and ``model`` objects where they are not built
    in) and return what the store keeps.

    Runs in a worker process (or a Dask worker): plain data in, plain data out, no database access.
    """
    from .training import train, train_sequence

    _register(penalty, model)
    try:  # train_sequence, not fit(make_problem(...)): rng="native" draws its inputs itself
        if arrays is not None:
            return result_record(train(**_data_fields(fields), **_as_data(arrays)))
        return result_record(train_sequence([make_config(**fields)])[0])
    except WdlibError as err:
        run = ", ".join(f"{k}={fields[k]!r}" for k in ("backend", "lambd", "seed"))
        raise RunFailedError(f"the run {run} failed: {err}") from None


def _as_data(arrays: tuple[Any, ...]) -> dict[str, Any]:
    """``arrays`` (X, y) or (X, y, X_test, y_test) as train()'s ``data=`` and ``test=``."""
    return {"data": arrays[:2], "test": arrays[2:] if len(arrays) == 4 else None}


def _data_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Config fields without those that train(data=...) derives from the arrays."""
    derived = ("dataset", "data_fingerprint", "n_train", "n_test", "num_inputs")
    return {k: v for k, v in fields.items() if k not in derived}


def _register(penalty: Any, model: Any) -> None:
    """A fresh worker process knows only the built-in penalties and models: register the user's."""
    if penalty is not None:
        register_penalty(penalty)
    if model is not None:
        register_model(model)


def run_lambdas(fields: dict[str, Any], lambdas: list[float], arrays: tuple[Any, ...] | None = None,
                penalty: Any = None, model: Any = None) -> list[dict[str, Any]]:
    """Train the configuration ``fields`` (a dict of Config fields) at every λ of ``lambdas`` as one
    batched run (:func:`wdlib.train_lambdas`); return what the store keeps, one record per λ, in order.

    Runs in a worker process, like :func:`run_config`.
    """
    from .training import train_lambdas

    _register(penalty, model)
    rest = {k: v for k, v in fields.items() if k not in ("backend", "preset", "seed", "lambd")}
    if arrays is not None:
        rest = {**_data_fields(rest), **_as_data(arrays)}
    try:
        runs = train_lambdas(fields["backend"], lambdas, fields["preset"], fields["seed"], **rest)
        expected = with_lambdas(make_config(**fields), lambdas)
        for run, config in zip(runs, expected, strict=True):  # each row is stored under this config's key
            if run.config != config:
                raise RunFailedError(f"train_lambdas returned the run of {run.config}, not of {fields}")
        return [result_record(run) for run in runs]
    except WdlibError as err:
        listed = ", ".join(f"{lam!r}" for lam in lambdas)
        raise RunFailedError(f"the runs backend={fields['backend']!r}, lambd in [{listed}], "
                             f"seed={fields['seed']!r} failed: {err}") from None
