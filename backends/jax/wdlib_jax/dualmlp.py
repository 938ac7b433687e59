"""The compiled whole run (:mod:`wdlib_jax.scan`) of the built-in MLP trained by plain SGD, with its
first layer's weights in the dual form of :mod:`wdlib.vectorized`: fewer multiply-adds per step.

Every SGD step adds rows of X to the first layer's weights (its gradient is ``X_B^T G``, G the gradient
at the layer's pre-activations) and the L2 penalty scales them, so ``W1 = c W1_0 + X^T A`` with a
scalar ``c`` and ``A`` (n_train, hidden[0]). The layer's pre-activations on any rows ``X'`` are then
``c X' W1_0 + (X' X^T) A``: with the kernel rows ``X X^T`` and ``X W1_0`` computed once (and the test
set's), a step multiplies (batch, n) by (n, hidden) instead of (batch, p) by (p, hidden), and its update
of W1 is ``A[B] -= (lr / bs) G`` plus ``c, A *= 1 - lr m λ / bs``; every evaluation likewise. The
chapter (20 examples, 200 features) so does a tenth of the work per step and per evaluation; the
other layers are unchanged, their gradients from ``jax.grad`` of the same objective. W1 is formed
once, at the end.

The same iteration as the eager loop's (the books' objective: the penalty broadcast onto each example,
summed, SGD dividing by batch_size), regrouped: equal up to rounding (tests/test_jax_dualmlp.py, float64
1e-9 and float32 1e-4 against the eager loop, as tests/test_jax_scan.py). Used where the linear fast
path would use its dual layout (``fastpath.OPTIONS.dual_ratio``, ``dual_max_n``): more features than
twice the examples.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from wdlib import Config, Problem, fastpath
from wdlib.model import Params, decay_mask, squared_loss

from .scan import drive


def applies(problem: Problem, config: Config) -> bool:
    """Whether the run is the MLP by from-scratch SGD (no optimizer decay; the L2 penalty or none) on
    a problem with many more features than examples."""
    (n, p), opt = problem.X_train.shape, fastpath.OPTIONS
    return (config.mode == "scratch" and config.model == "mlp" and len(config.hidden) > 0
            and config.optimizer == "sgd" and not config.wd and not config.optimizer_args
            and (config.penalty == "l2" or not config.lambd)
            and n + 3 <= opt.dual_ratio * (p + 2) and n <= opt.dual_max_n)


def compiled_for(problem: Problem, config: Config) -> Callable[..., Any]:
    """:func:`compiled` of the run's structure (one compiled function per structure, as scan's)."""
    mask = decay_mask(problem.init, config.decay_bias, config.penalize) if config.lambd else {}
    penalized = tuple(k for k, on in mask.items() if on)
    return compiled(tuple(config.hidden), penalized, problem.batch_size, problem.eval_every)


@functools.lru_cache(maxsize=32)
def compiled(
    hidden: tuple[int, ...], penalized: tuple[str, ...], bs: int, eval_every: int
) -> Callable[..., Any]:
    """``run(params, X, y, X_test, y_test, order, (lr, lambd, wd)) -> (final params, losses (E, 2))``,
    as :func:`wdlib_jax.scan._compiled`'s, jit-compiled."""
    last = len(hidden) + 1

    def head(h: Any, rest: Params) -> Any:
        """The layers after the first, on its activations (as :class:`wdlib.model.MLP`)."""
        for i in range(2, last + 1):
            h = jnp.dot(h, rest[f"W{i}"]) + rest[f"b{i}"]
            if i < last:
                h = jax.nn.relu(h)
        return h

    def objective(z: Any, rest: Params, y: Any, lambd: Any) -> Any:
        """The summed minibatch objective, of the first layer's ``X_B W1`` and the other parameters."""
        total = squared_loss(head(jax.nn.relu(z + rest["b1"]), rest), y).sum()
        for k in penalized:
            if k != "W1":  # the penalty on each of the m examples: m λ ||p||^2 / 2
                total = total + y.shape[0] * lambd * (rest[k] ** 2).sum() / 2
        return total

    grad = jax.grad(objective, argnums=(0, 1))

    def run(params: Params, X: Any, y: Any, X_test: Any, y_test: Any, order: Any,
            hyper: tuple[Any, ...]) -> tuple[Params, Any]:
        lr, lambd = hyper[0], hyper[1]
        W0 = params["W1"]
        K, KW, K_test, KW_test = X @ X.T, X @ W0, X_test @ X.T, X_test @ W0
        rest = {k: v for k, v in params.items() if k != "W1"}

        def step(carry: tuple[Any, Any, Params], rows: Any) -> tuple[Any, Any, Params]:
            c, A, rest = carry
            G, g = grad(c * KW[rows] + K[rows] @ A, rest, y[rows], lambd)
            if "W1" in penalized:
                d = 1 - lr * rows.shape[0] * lambd / bs
                c, A = c * d, A * d
            A = A.at[rows].add((-lr * G) / bs)  # the rows of a minibatch are distinct
            return c, A, {k: v + (-lr * g[k]) / bs for k, v in rest.items()}

        def losses(carry: tuple[Any, Any, Params]) -> Any:
            c, A, rest = carry

            def mean(Kx: Any, KWx: Any, yx: Any) -> Any:
                return squared_loss(head(jax.nn.relu(c * KWx + Kx @ A + rest["b1"]), rest), yx).mean()

            return jnp.stack([mean(K, KW, y), mean(K_test, KW_test, y_test)])

        start = (jnp.ones((), X.dtype), jnp.zeros((X.shape[0], W0.shape[1]), X.dtype), rest)
        (c, A, rest), curve = drive(step, losses, start, order, bs, eval_every, X.dtype)
        W1 = c * W0 + X.T @ A
        return {k: W1 if k == "W1" else rest[k] for k in params}, curve

    return jax.jit(run)
