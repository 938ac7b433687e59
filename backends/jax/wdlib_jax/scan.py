"""The whole run as one jit-compiled ``lax.scan``, for any model, penalty and optimizer (the core chain
of :mod:`wdlib.optim`, or optax's in ``mode="concise"``): the eager loop's updates, compiled.

Layout, all in one compiled function: the first minibatch step is traced with the optimizer state's
Python int counts (the core optimizers branch in Python on their step count, e.g. ``trace``'s first
step, which a traced count cannot do); then ``lax.scan`` over the rest of the first epoch, and one
``lax.while_loop`` over the other epochs, each an inner ``lax.scan`` over its full minibatches plus the
short last one, if any, as one more step (divided by ``batch_size`` like the books). Counts in the core
optimizers' state are carried as :class:`Count`, a traced integer known to be >= 1, so ``count == 0``
is False, ``count + 1`` and ``b ** count`` stay traced. The train and test losses are computed after
the evaluated epochs only (``lax.cond`` on the epoch's number with ``eval_every > 1``; the others'
rows are zeros, dropped afterwards), as the eager loop. The loop stops after the first evaluated epoch
whose loss is NaN or infinite, as the eager loop does: its parameters are the run's, and the later
epochs' losses stay NaN (no copy of the parameters kept in every epoch, no epochs run past the stop).
That layout is :func:`drive`, for any carry and step: the MLP by plain SGD on few examples of many
features runs it on its first layer's dual form (:mod:`wdlib_jax.dualmlp`).

Compiled once per structure: the function is cached on the config's non-numeric fields, which of
``lr``, ``lambd`` and ``wd`` are zero, and the other optimizer arguments; the data, the batch order and
``lr``, ``lambd`` and ``wd`` are its arguments (jax.jit's own cache adds the shapes and dtypes), so a
sweep over λ or the learning rate compiles once. The three are passed as arrays of the run's dtype,
so an expression of them (``lr * wd``, ``n * lambd``) is rounded in that dtype, where the eager loop
rounds the Python float once: the same up to rounding.

Equal to the eager loop up to XLA's fusion of the arithmetic (tests/test_jax_scan.py: float64 1e-9,
float32 1e-4). Not for problems with the book's batched evaluation orders (``rng="native"``).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from wdlib import Config, Problem
from wdlib.model import Params, decay_mask, make_model, mean_loss, squared_loss


@jax.tree_util.register_pytree_node_class
class Count:
    """A step count inside the scan: traced, and >= 1 (the first step ran before the scan)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if other == 0:
            return False
        raise TypeError("a traced step count can only be compared with 0")

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: int) -> Count:
        return Count(self.value + other)

    __radd__ = __add__

    def __rpow__(self, base: float) -> Any:
        return base**self.value

    def tree_flatten(self) -> tuple[tuple[Any], None]:
        return (self.value,), None

    @classmethod
    def tree_unflatten(cls, aux: None, children: tuple[Any]) -> Count:
        return cls(*children)


def _counts(state: Any) -> Any:
    """``state`` with its Python int counts as :class:`Count`s of int32 arrays."""
    if isinstance(state, bool):
        return state
    if isinstance(state, int):
        return Count(jnp.asarray(state, jnp.int32))
    if isinstance(state, tuple):
        items = [_counts(s) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)  # optax's NamedTuples
    if isinstance(state, dict):
        return {k: _counts(v) for k, v in state.items()}
    return state


#: The numeric fields passed to the compiled run as arguments (the rest of the config is its key).
HYPER = ("lr", "lambd", "wd")


class Hyper:
    """A hyperparameter traced inside the compiled run, whose truth value is known: the core's
    ``if wd:`` and ``if not lambd:`` choose the same pieces as for the float, and arithmetic is that of
    the traced value."""

    def __init__(self, value: Any, nonzero: bool) -> None:
        self.value, self.nonzero = value, nonzero

    def __bool__(self) -> bool:
        return self.nonzero

    def __neg__(self) -> Any:
        return -self.value

    def __mul__(self, other: Any) -> Any:
        return self.value * _raw(other)

    def __rmul__(self, other: Any) -> Any:
        return _raw(other) * self.value

    def __add__(self, other: Any) -> Any:
        return self.value + _raw(other)

    def __radd__(self, other: Any) -> Any:
        return _raw(other) + self.value

    def __sub__(self, other: Any) -> Any:
        return self.value - _raw(other)

    def __rsub__(self, other: Any) -> Any:
        return _raw(other) - self.value

    def __truediv__(self, other: Any) -> Any:
        return self.value / _raw(other)

    def __rtruediv__(self, other: Any) -> Any:
        return _raw(other) / self.value


def _raw(x: Any) -> Any:
    return x.value if isinstance(x, Hyper) else x


def make_update(ops: Any, config: Any, params: Params) -> tuple[Any, Callable[..., tuple[Params, Any]]]:
    """``(state, update)``: ``update(params, state, X, y) -> (params, state)`` is one minibatch step of
    ``config`` (the same pieces the eager loop uses; ``config`` may hold :class:`Hyper` values)."""
    from wdlib import optim
    from wdlib.training import objective_for, optimizer_for

    if config.mode == "concise":
        from . import native_optimizer

        optimizer = native_optimizer(config, decay_mask(params, config.decay_bias, config.penalize))
        model = make_model(config.model, config.hidden)

        def loss(p: Params, X: Any, y: Any) -> Any:
            return squared_loss(model.apply(ops, p, X), y).mean()  # optax.l2_loss, mean

        grad = jax.grad(loss)
    else:
        objective = objective_for(config)
        optimizer = optimizer_for(ops, config, params)
        grad = jax.grad(lambda p, X, y: objective(ops, p, X, y).sum())

    def update(p: Params, state: Any, X: Any, y: Any) -> tuple[Params, Any]:
        updates, state = optimizer.update(grad(p, X, y), state, p)
        return optim.apply_updates(p, updates), state

    return optimizer.init(params), update


def fit_compiled(ops: Any, problem: Problem, config: Config) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(train_loss, test_loss, final params)`` of the run, as the eager loop records them."""
    dt = np.dtype(config.dtype)
    arrays = tuple(np.asarray(a, dt) for a in (problem.X_train, problem.y_train, problem.X_test,
                                                problem.y_test))
    params = {k: np.asarray(v, dt) for k, v in problem.init.items()}
    hyper = tuple(np.asarray(getattr(config, name), dt) for name in HYPER)
    from . import dualmlp

    if dualmlp.applies(problem, config):  # the MLP by SGD on few examples of many features
        run = dualmlp.compiled_for(problem, config)
    else:
        run = _compiled(ops, _key(config), problem.batch_size, problem.eval_every)
    final, curve = run(params, *arrays, problem.batch_order, hyper)
    picked = np.asarray(curve)[problem.eval_every - 1 :: problem.eval_every]
    return picked[:, 0].copy(), picked[:, 1].copy(), {k: np.asarray(v).copy() for k, v in final.items()}


def _key(config: Config) -> tuple[Any, ...]:
    """What the compiled run depends on besides its arguments: every field that shapes the
    computation, and of ``lr``, ``lambd`` and ``wd`` only whether each is zero."""
    skip = {"backend", "engine", "seed", "n_train", "n_test", "num_inputs", "num_epochs", "true_w",
            "true_b", "noise", "data_fingerprint", "on_divergence", "preset"}
    fields = [(f.name, getattr(config, f.name)) for f in dataclasses.fields(config) if f.name not in skip]
    return tuple((name, bool(value)) if name in HYPER else (name, value) for name, value in fields)


@functools.lru_cache(maxsize=32)
def _compiled(ops: Any, key: tuple[Any, ...], bs: int, eval_every: int) -> Callable[..., Any]:
    """The whole run of the config ``key`` describes, jit-compiled: ``run(params, X, y, X_test, y_test,
    order, (lr, lambd, wd)) -> (final params, per-epoch losses (E, 2))``."""
    fields = dict(key)
    model = make_model(fields["model"], fields["hidden"])

    def run(params: Params, X: Any, y: Any, X_test: Any, y_test: Any, order: Any,
            hyper: tuple[Any, ...]) -> tuple[Params, Any]:
        values = {name: Hyper(v, fields[name]) for name, v in zip(HYPER, hyper, strict=True)}
        if fields["mode"] == "concise":  # optax takes the traced values as they are
            values = {name: h.value for name, h in values.items()}
        config = types.SimpleNamespace(**{**fields, **values, "batch_size": bs})
        state, update = make_update(ops, config, params)

        def step(carry: tuple[Params, Any], rows: Any) -> tuple[Params, Any]:
            return update(carry[0], carry[1], X[rows], y[rows])

        def losses(carry: tuple[Params, Any]) -> Any:
            p = carry[0]
            return jnp.stack([mean_loss(ops, p, X, y, model), mean_loss(ops, p, X_test, y_test, model)])

        final, curve = drive(step, losses, (params, state), order, bs, eval_every, X.dtype,
                             lambda c: (c[0], _counts(c[1])))
        return final[0], curve

    return jax.jit(run)


def drive(step: Callable[[Any, Any], Any], losses: Callable[[Any], Any], carry: Any, order: Any, bs: int,
          eval_every: int, dtype: Any, after_first: Callable[[Any], Any] = lambda c: c) -> tuple[Any, Any]:
    """Traced: the whole run from ``carry`` (the layout of the module docstring), ``(final carry,
    per-epoch losses (E, 2))``. ``step(carry, rows) -> carry`` is one minibatch of the training rows
    ``rows``, ``losses(carry)`` the train and test loss (2,); ``after_first`` maps the carry after the
    first step (traced with Python int counts) to the one the loops carry."""
    def steps(carry: Any, rows: Any) -> Any:
        """The minibatches of ``rows`` (full ones, then a short one, if any), from ``carry``."""
        m = rows.shape[0] // bs
        if m:
            carry, _ = jax.lax.scan(lambda c, idx: (step(c, idx), None), carry, rows[: m * bs].reshape(m, bs))
        if rows.shape[0] > m * bs:
            carry = step(carry, rows[m * bs :])
        return carry

    carry = steps(after_first(step(carry, order[0, :bs])), order[0, bs:])  # batch_size <= n_train
    first_losses = losses(carry) if eval_every == 1 else jnp.zeros(2, dtype)  # not evaluated
    done = (eval_every == 1) & ~jnp.all(jnp.isfinite(first_losses))
    E = order.shape[0]
    curve = jnp.full((E, 2), jnp.nan, dtype).at[0].set(first_losses)

    def more(state: tuple[Any, ...]) -> Any:
        return (state[1] < E) & ~state[2]

    def epoch(state: tuple[Any, ...]) -> tuple[Any, ...]:
        carry, e, _, curve = state  # e: the epoch's index, 1, 2, ... (its number e + 1)
        carry = steps(carry, order[e])
        evaluated = (e + 1) % eval_every == 0
        if eval_every == 1:
            out = losses(carry)
        else:  # the losses of the evaluated epochs only (a forward pass over both sets each)
            out = jax.lax.cond(evaluated, losses, lambda c: jnp.zeros(2, dtype), carry)
        bad = evaluated & ~jnp.all(jnp.isfinite(out))
        return carry, e + 1, bad, curve.at[e].set(out)

    final, _, _, curve = jax.lax.while_loop(more, epoch, (carry, jnp.asarray(1, jnp.int32), done, curve))
    return final, curve


@functools.lru_cache(maxsize=32)
def step_functions(ops: Any, key: tuple[Any, ...], bs: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The eager loop's minibatch step of the config ``key`` describes, jit-compiled once per
    structure (as :func:`_compiled`): ``first(params, X, y, hyper) -> (params, state)`` makes the
    optimizer's state and takes the first step (Python int counts, traced once), ``later(params, state,
    X, y, hyper) -> (params, state)`` every other one (counts as :class:`Count`)."""
    fields = dict(key)

    def update_of(params: Params, hyper: tuple[Any, ...]) -> tuple[Any, Callable[..., Any]]:
        values = {name: Hyper(v, fields[name]) for name, v in zip(HYPER, hyper, strict=True)}
        return make_update(ops, types.SimpleNamespace(**{**fields, **values, "batch_size": bs}), params)

    def first(params: Params, X: Any, y: Any, hyper: tuple[Any, ...]) -> tuple[Params, Any]:
        state, update = update_of(params, hyper)
        params, state = update(params, state, X, y)
        return params, _counts(state)

    def later(params: Params, state: Any, X: Any, y: Any, hyper: tuple[Any, ...]) -> tuple[Params, Any]:
        return update_of(params, hyper)[1](params, state, X, y)

    return jax.jit(first), jax.jit(later)


def make_step(ops: Any, config: Config) -> Callable[[Params, Any, Any], Params]:
    """``step(params, X, y) -> params``: the eager loop's step of the core optimizer, compiled (one
    call per minibatch instead of one per operation of the optimizer's update)."""
    first, later = step_functions(ops, _key(config), config.batch_size)
    dt = np.dtype(config.dtype)
    hyper = tuple(np.asarray(getattr(config, name), dt) for name in HYPER)
    state = None

    def step(params: Params, X: Any, y: Any) -> Params:
        nonlocal state
        if state is None:
            params, state = first(params, X, y, hyper)
        else:
            params, state = later(params, state, X, y, hyper)
        return params

    return step
