"""JAX backend: gradients by ``jax.grad`` of the core objective, compiled with ``jax.jit``.

float64 runs enable JAX's x64 mode inside the run only (a context manager), so nothing leaks out.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wdlib import Backend, Config, Objective, Problem, fastpath, vectorized
from wdlib.model import Params, decay_mask, make_model
from wdlib.optim import OPTIMIZER_ARGS
from wdlib.semantics import native_spelling
from wdlib.validate import check_result

jax: Any = None  # imported by load()
jnp: Any = None


class JaxBackend(Backend):
    name = "jax"
    framework = "jax"
    install = "pip install jax"

    def load(self) -> None:
        global jax, jnp
        import jax
        import jax.numpy as jnp

    def context(self, dtype: str) -> contextlib.AbstractContextManager[Any]:
        if dtype != "float64":
            return contextlib.nullcontext()
        # jax >= 0.8 has jax.enable_x64; older releases have it in jax.experimental.
        if hasattr(jax, "enable_x64"):
            return jax.enable_x64(True)
        from jax import experimental

        return experimental.enable_x64(True)

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return jnp.asarray(x, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def take(self, x: Any, idx: np.ndarray) -> Any:
        return _take()(x, idx)  # x[idx], compiled: indexing goes through Python in jax.numpy

    @functools.lru_cache(maxsize=16)  # noqa: B019 - one compiled loss per model, kept for reuse
    def mean_loss_function(self, model: Any) -> Callable[[Params, Any, Any], Any]:
        """The eager loop's per-epoch loss (:func:`wdlib.model.mean_loss` of ``model``), compiled."""
        from wdlib.model import mean_loss

        return jax.jit(lambda params, X, y: mean_loss(self, params, X, y, model))

    def optimizer_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params]:
        """The eager loop's from-scratch step (the objective's gradient, the core optimizer of
        :mod:`wdlib.optim`, the update), jit-compiled as a whole, once per config structure
        (wdlib_jax.scan.make_step): one call per minibatch instead of one per operation."""
        from .scan import make_step

        return make_step(self, config)

    def dot(self, a: Any, b: Any) -> Any:
        return jnp.dot(a, b)

    def sign(self, a: Any) -> Any:
        return jnp.sign(a)

    def relu(self, a: Any) -> Any:
        return jax.nn.relu(a)

    def sqrt(self, a: Any) -> Any:
        return jnp.sqrt(a)

    def zeros_like(self, a: Any) -> Any:
        return jnp.zeros_like(a)

    def grad(self, objective: Objective, params: Params, X: Any, y: Any) -> Params:
        return self._grad_fn(objective)(params, X, y)

    def make_grad(self, objective: Objective) -> Callable[[Params, Any, Any], Params]:
        return self._grad_fn(objective)  # the compiled function itself: no cache lookup per step

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one compiled gradient per objective, kept for reuse
    def _grad_fn(self, objective: Objective) -> Any:
        return jax.jit(jax.grad(lambda params, X, y: objective(self, params, X, y).sum()))

    #: mode="concise" trains on the mean of optax.l2_loss, (y_hat - y)^2 / 2:
    #: concise(wd, lr) = scratch(wd, lr).
    concise_loss_scale = 1.0

    def concise_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params]:
        """optax's way, for any model: the mean of ``optax.l2_loss`` and the optax optimizer of
        ``config`` (``chain(add_decayed_weights(wd, mask), sgd/adam)`` or ``adamw(..., mask=mask)``),
        the mask leaving out the biases unless ``config.decay_bias``; the state threaded step to step."""
        optimizer = native_optimizer(config, decay_mask(params, config.decay_bias, config.penalize))
        model = make_model(config.model, config.hidden)

        def loss(params: Params, X: Any, y: Any) -> Any:
            import optax

            return optax.l2_loss(model.apply(self, params, X), y).mean()

        @jax.jit
        def update(params: Params, state: Any, X: Any, y: Any) -> tuple[Params, Any]:
            import optax

            grads = jax.grad(loss)(params, X, y)
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        state = optimizer.init(params)

        def step(params: Params, X: Any, y: Any) -> Params:
            nonlocal state
            params, state = update(params, state, X, y)
            return params

        return step

    def concise_loss(self, params: Params, X: Any, y: Any) -> Any:
        import optax

        return optax.l2_loss(jnp.dot(X, params["w"]) + params["b"], y).mean()

    # Any model/optimizer as one compiled lax.scan (wdlib_jax.scan), where the fused path does not apply.

    def supports_compiled(self, problem: Problem, config: Config) -> bool:
        """The run can go through :meth:`fit_compiled`: no book's batched evaluation orders, and no
        penalty with sign(w) (L1's subgradient flips for weights oscillating around 0, so only the
        eager loop's exact operation sequence reproduces it: see wdlib.vectorized)."""
        return problem.eval_orders is None and (config.penalty == "l2" or config.lambd == 0)

    def fit_compiled(self, problem: Problem, config: Config) -> tuple[np.ndarray, np.ndarray, Params]:
        """``(train_loss, test_loss, final params)`` of the run as one jit-compiled ``lax.scan``."""
        from .scan import fit_compiled

        with self.context(config.dtype):
            return fit_compiled(self, problem, config)

    # Fast path (wdlib_jax.fused): the whole run as one jit-compiled lax.scan, compiled once per shape.

    def fit_plan(self, plan: Any) -> Any:
        from .fused import fit_plan

        return fit_plan(plan)

    def fused_fit(self, problem: Problem, config: Config) -> tuple[np.ndarray, np.ndarray, Params]:
        """The one-λ run through :mod:`wdlib_jax.direct` (no plan, no driver: a chapter-sized run's
        cost is mostly around its compiled call), or through the plan where that does not apply; the
        result checked as the base class checks it."""
        return vectorized.single(self._direct(problem, config, None))

    def fused_fit_lambdas(self, problem: Problem, config: Config, lambdas: Sequence[float]) -> Any:
        """Every λ at once, as :meth:`fused_fit` runs one (:mod:`wdlib_jax.direct`)."""
        return self._direct(problem, config, list(lambdas))

    def _direct(self, problem: Problem, config: Config, lambdas: list[float] | None) -> Any:
        from .direct import fit

        with self.context(config.dtype), fastpath.one_blas_thread():
            result = fit(problem, config, lambdas)
            if result is None:
                result = self.fit_plan(vectorized.make_plan(problem, config, lambdas))
        return check_result(self.name, result, problem, config, 1 if lambdas is None else len(lambdas))


@functools.cache
def _take() -> Any:
    """``take(x, idx) = x[idx]`` (rows), jit-compiled once per process."""
    return jax.jit(lambda x, idx: x[idx])


def native_optimizer(config: Config, mask: dict[str, bool]) -> Any:
    """The optax optimizer of ``config``'s spelling (wdlib.semantics.SPELLINGS), decaying ``mask``."""
    import optax

    a = {**OPTIMIZER_ARGS[config.optimizer], **dict(config.optimizer_args)}
    key = native_spelling("jax", config.optimizer, config.decay, a).key
    lr, wd = config.lr, config.wd
    if key == "optax.adamw":
        return optax.adamw(lr, b1=a["b1"], b2=a["b2"], eps=a["eps"], weight_decay=wd, mask=mask)
    if key == "optax.adam":
        inner = optax.adam(lr, b1=a["b1"], b2=a["b2"], eps=a["eps"])
    elif key == "optax.sgd":
        inner = optax.sgd(lr)
    else:
        inner = optax.sgd(lr, momentum=a["beta"], nesterov=bool(a["nesterov"]))
    return optax.chain(optax.add_decayed_weights(wd, mask=mask), inner)
