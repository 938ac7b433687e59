"""The whole run as one jit-compiled ``lax.scan``, for any model, penalty and optimizer (the core chain
of :mod:`wdlib.optim`, or optax's in ``mode="concise"``): the eager loop's updates, compiled.

Layout: the first epoch runs eagerly (the core optimizers branch in Python on their step count, e.g.
``trace``'s first step, which a traced count cannot do); then one ``lax.scan`` over the other epochs,
each an inner ``lax.scan`` over its full minibatches plus the short last one, if any, as one more step
(divided by ``batch_size`` like the books). Counts in the core optimizers' state are carried as
:class:`Count`, a traced integer known to be >= 1, so ``count == 0`` is False, ``count + 1`` and
``b ** count`` stay traced. The train and test losses are computed after every epoch and the evaluated
epochs picked afterwards (one forward pass per epoch more than the eager loop).

Equal to the eager loop up to XLA's fusion of the arithmetic (tests/test_jax_scan.py: float64 1e-9,
float32 1e-4). Not for problems with the book's batched evaluation orders (``rng="native"``), and a
diverging run ends with the last epoch's (non-finite) parameters, not those where the loop stopped.
"""

from __future__ import annotations

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


def make_update(ops: Any, config: Config, params: Params) -> tuple[Any, Callable[..., tuple[Params, Any]]]:
    """``(state, update)``: ``update(params, state, X, y) -> (params, state)`` is one minibatch step of
    ``config`` (the same pieces the eager loop uses)."""
    from wdlib import optim
    from wdlib.training import objective_for, optimizer_for

    if config.mode == "concise":
        from . import native_optimizer

        optimizer = native_optimizer(config, decay_mask(params, config.decay_bias, config.penalize))
        model = make_model(config.model, config.hidden)

        def loss(p: Params, X: Any, y: Any) -> Any:
            return squared_loss(model.apply(ops, p, X), y).mean()  # optax.l2_loss, mean

        grad = jax.grad(loss)
        apply = optim.apply_updates
    else:
        objective = objective_for(config)
        optimizer = optimizer_for(ops, config, params)
        grad = jax.grad(lambda p, X, y: objective(ops, p, X, y).sum())
        apply = optim.apply_updates

    def update(p: Params, state: Any, X: Any, y: Any) -> tuple[Params, Any]:
        updates, state = optimizer.update(grad(p, X, y), state, p)
        return apply(p, updates), state

    return optimizer.init(params), update


def fit_compiled(ops: Any, problem: Problem, config: Config) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(train_loss, test_loss, final params)`` of the run, as the eager loop records them."""
    dtype = config.dtype
    X, y, X_test, y_test = (jnp.asarray(a, dtype) for a in
                            (problem.X_train, problem.y_train, problem.X_test, problem.y_test))
    params = {k: jnp.asarray(v, dtype) for k, v in problem.init.items()}
    state, update = make_update(ops, config, params)
    model = make_model(config.model, config.hidden)
    order = problem.batch_order
    bs, n = problem.batch_size, order.shape[1]
    full = n // bs

    def losses(p: Params) -> Any:
        return jnp.stack([mean_loss(ops, p, X, y, model), mean_loss(ops, p, X_test, y_test, model)])

    for first in range(0, n, bs):  # epoch 1, eagerly
        idx = order[0, first : first + bs]
        params, state = update(params, state, X[idx], y[idx])
    first_losses = losses(params)
    if config.num_epochs > 1:
        params, later = _scan(update, losses, params, _counts(state), X, y, order[1:], bs, full)
        curve = np.concatenate([np.asarray(first_losses)[None], np.asarray(later)])
    else:
        curve = np.asarray(first_losses)[None]
    picked = curve[problem.eval_every - 1 :: problem.eval_every]
    return picked[:, 0].copy(), picked[:, 1].copy(), {k: np.asarray(v).copy() for k, v in params.items()}


def _scan(update: Callable, losses: Callable, params: Params, state: Any, X: Any, y: Any,
          order: np.ndarray, bs: int, full: int) -> tuple[Params, Any]:
    """Epochs 2.. as one compiled scan: ``(final params, per-epoch losses)``."""
    order = jnp.asarray(order)

    def epoch(carry: tuple[Params, Any], rows: Any) -> tuple[tuple[Params, Any], Any]:
        def batch(c: tuple[Params, Any], idx: Any) -> tuple[tuple[Params, Any], None]:
            return update(c[0], c[1], X[idx], y[idx]), None

        carry, _ = jax.lax.scan(batch, carry, rows[: full * bs].reshape(full, bs))
        if rows.shape[0] > full * bs:
            tail = rows[full * bs :]
            carry = update(carry[0], carry[1], X[tail], y[tail])
        return carry, losses(carry[0])

    (params, _), curve = jax.jit(lambda c, o: jax.lax.scan(epoch, c, o))((params, state), order)
    return params, curve
