"""The MXNet backend's eager step in float32: the core optimizers (:mod:`wdlib.optim`) as MXNet's own
fused update operators, one per parameter, as a gluon ``Trainer`` issues them.

Every ``nd`` operator costs tens of microseconds of engine overhead, and the core's transforms spell an
update in elementwise operators (Adam: some fifteen per parameter). The same mathematics in one
operator each:

- SGD with decay: ``sgd_update``, ``w - lr * (rescale * g + wd * w)``;
- momentum (PyTorch's ``buf = beta * buf + g``, update ``-lr * buf``): ``sgd_mom_update`` keeps
  ``mom = -lr * buf`` (``beta * 0 - lr * g`` on the first step is the core's ``buf = g``);
- Adam: ``adam_update`` (``w - lr' * m / (sqrt(v) + eps')``, no bias correction of its own) with
  ``lr' = lr sqrt(1 - b2^t) / (1 - b1^t)`` and ``eps' = eps sqrt(1 - b2^t)``, which is the core's
  ``m_hat / (sqrt(v_hat) + eps)``; decoupled and independent decay with ``contrib.adamw_update``
  (``eta = 1``, its ``wd`` the per-step rate).

The summed minibatch gradient is divided by the batch size through ``rescale_grad``, coupled decay is
the operators' ``wd``, and an L2 penalty (``lambd``) is folded into that ``wd`` as its gradient
``n * lambd * w`` (n the rows of the minibatch) instead of being differentiated by autograd, where an
operator has the slot for it.

Their hyperparameters are float32 attributes, so the result equals the core's only to float32 rounding
(tests/test_mxnet_eager.py): :func:`make_step` is used for float32 runs only, and float64 runs keep the
core's exact spelling. So does the linear model's plain SGD, the books' step that the gluonbook
reproduction matches bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from wdlib import Backend, Config
from wdlib.model import L2Penalty, Params, decay_mask
from wdlib.optim import OPTIMIZER_ARGS

Step = Callable[[Params, Any, Any], Params]


def supported(config: Config, params: Params) -> bool:
    """Whether :func:`make_step` has a fused spelling of ``config``'s from-scratch step."""
    if config.mode == "concise" or config.dtype != "float32" or not params:
        return False
    if any(p.dtype != np.float32 for p in params.values()):
        return False
    kw = {**OPTIMIZER_ARGS[config.optimizer], **dict(config.optimizer_args)}
    if config.optimizer == "momentum":
        return not kw["nesterov"] and not kw["dampening"]
    if config.optimizer == "sgd":  # the books' step stays theirs, bit for bit
        return bool(config.wd) or config.model != "linear"
    return config.optimizer == "adam"


def make_step(backend: Backend, config: Config, params: Params) -> Step | None:
    """The update of one minibatch with MXNet's fused optimizer operators, or None where
    :func:`supported` says there is none (the core's step is used)."""
    if not supported(config, params):
        return None
    from wdlib.steps import objective_for

    from . import nd

    objective = objective_for(config)
    mask = decay_mask(params, config.decay_bias, config.penalize)
    adam = config.optimizer == "adam"
    coupled = not config.wd or config.decay == "coupled"
    # The L2 penalty's gradient n * lambd * w goes into the operator's coupled decay; AdamW's operator
    # has no coupled decay, so there autograd differentiates the penalty as in the core's step.
    fold = bool(objective.lambd) and type(objective.penalty) is L2Penalty and (coupled or not adam)
    penalized = set(objective._penalized(params)) if fold else set()
    lambd = {k: objective.lambd if k in penalized else 0.0 for k in params}
    if fold:
        objective = dataclasses.replace(objective, lambd=0.0)
    grad = backend.make_grad(objective)
    lr, bs = config.lr, float(config.batch_size)
    wd = {k: config.wd if on and coupled else 0.0 for k, on in mask.items()}
    rate = {k: 0.0 if coupled or not on else config.lr * config.wd if config.decay == "decoupled"
            else config.wd for k, on in mask.items()}

    @_cached
    def decays(n: int) -> dict[str, float]:
        """Each parameter's coupled decay for a minibatch of ``n`` rows (the penalty's share is n's)."""
        return {k: wd[k] + lambd[k] * n / bs for k in params}

    rows = (lambda X: X.shape[0]) if fold else (lambda X: 0)
    kw = {**OPTIMIZER_ARGS[config.optimizer], **dict(config.optimizer_args)}
    if config.optimizer == "sgd":
        return _sgd(nd, grad, rows, decays, rate, lr, bs)
    if config.optimizer == "momentum":
        return _momentum(nd, grad, rows, decays, rate, lr, bs, float(kw["beta"]), params)
    return _adam(nd, grad, rows, decays, rate, lr, bs, kw, params, coupled)


def _cached(fn: Callable[[int], dict[str, float]]) -> Callable[[int], dict[str, float]]:
    memo: dict[int, dict[str, float]] = {}

    def get(n: int) -> dict[str, float]:
        got = memo.get(n)
        if got is None:
            got = memo[n] = fn(n)
        return got

    return get


def _sgd(nd: Any, grad: Step, rows: Callable[[Any], int], decays: Callable[[int], dict[str, float]],
         rate: dict[str, float], lr: float, bs: float) -> Step:
    """``p - lr * (g / bs + wd * p) - rate * p`` as ``sgd_update`` with ``wd + rate / lr``."""
    extra = {k: r / lr for k, r in rate.items()}

    def step(params: Params, X: Any, y: Any) -> Params:
        grads, wds = grad(params, X, y), decays(rows(X))
        new = {}
        for k, p in params.items():
            new[k] = nd.sgd_update(p, grads[k], lr=lr, wd=wds[k] + extra[k], rescale_grad=1 / bs)
        return new

    return step


def _momentum(nd: Any, grad: Step, rows: Callable[[Any], int], decays: Callable[[int], dict[str, float]],
              rate: dict[str, float], lr: float, bs: float, beta: float, params: Params) -> Step:
    """``sgd_mom_update`` (its momentum buffer is ``-lr`` times the core's); a decoupled decay is
    subtracted after it, from the step's parameters."""
    moms = {k: nd.zeros_like(p) for k, p in params.items()}

    def step(params: Params, X: Any, y: Any) -> Params:
        grads, wds = grad(params, X, y), decays(rows(X))
        new = {}
        for k, p in params.items():
            q = nd.sgd_mom_update(p, grads[k], moms[k], lr=lr, momentum=beta, wd=wds[k], rescale_grad=1 / bs)
            new[k] = q - rate[k] * p if rate[k] else q
        return new

    return step


def _adam(nd: Any, grad: Step, rows: Callable[[Any], int], decays: Callable[[int], dict[str, float]],
          rate: dict[str, float], lr: float, bs: float, kw: dict[str, Any], params: Params,
          coupled: bool) -> Step:
    """``adam_update`` (coupled decay) or ``contrib.adamw_update`` (decoupled, independent) with the
    bias corrections in the learning rate and epsilon."""
    b1, b2, eps = float(kw["b1"]), float(kw["b2"]), float(kw["eps"])
    means = {k: nd.zeros_like(p) for k, p in params.items()}
    vars_ = {k: nd.zeros_like(p) for k, p in params.items()}
    rescale = nd.array([1 / bs], dtype="float32")
    t = 0

    def step(params: Params, X: Any, y: Any) -> Params:
        nonlocal t
        t += 1
        root = math.sqrt(1 - b2**t)
        lr_t, eps_t = lr * root / (1 - b1**t), eps * root
        grads = grad(params, X, y)
        new = {}
        if coupled:
            wds = decays(rows(X))
            for k, p in params.items():
                new[k] = nd.adam_update(p, grads[k], means[k], vars_[k], lr=lr_t, beta1=b1, beta2=b2,
                                        epsilon=eps_t, wd=wds[k], rescale_grad=1 / bs)
        else:
            for k, p in params.items():
                new[k] = nd.contrib.adamw_update(p, grads[k], means[k], vars_[k], rescale, lr=lr_t, eta=1.0,
                                                 beta1=b1, beta2=b2, epsilon=eps_t, wd=rate[k])
        return new

    return step
