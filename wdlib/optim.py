"""Optimizers as small pure pieces, in the style of optax: a :class:`Transform` is an ``init``/``update``
pair, the state is passed explicitly, and :func:`chain` composes pieces into one optimizer.

Written once, with only the arithmetic operators and ``ops.sqrt``/``ops.zeros_like``, so the same
optimizer runs on NumPy, PyTorch, MXNet and JAX arrays (and inside ``jax.jit``/``lax.scan``).

Conventions:

- ``grads`` arrive *summed* over the minibatch, as the books' ``l.sum().backward()`` gives them;
  :func:`batch_mean` divides by the batch size (the books divide by ``batch_size`` even for a short
  last batch, and so does this).
- ``update`` returns *updates*, which :func:`apply_updates` adds to the parameters.
- Coupled decay (:func:`add_decayed_weights` before the optimizer's scaling) adds ``wd * p`` to the
  gradient, which for plain SGD is exactly the L2 penalty ``wd/2 ||p||^2``; decoupled decay
  (:func:`decoupled_decay`, after it) shrinks the parameters directly, scaled by the learning rate
  (AdamW) or not.

:func:`sgd` is the books' step ``p - lr * g / batch_size``, bitwise: ``p + (-lr * g) / batch_size``
rounds identically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Array = Any
Params = dict[str, Array]
State = Any
#: ``mask(params) -> {name: bool}`` or a fixed ``{name: bool}``: which parameters a piece acts on.
Mask = Mapping[str, bool] | Callable[[Params], Mapping[str, bool]] | None


@dataclass(frozen=True)
class Transform:
    """A gradient transformation: ``init(params) -> state``, ``update(grads, state, params) ->
    (updates, state)``. Pure: the caller keeps the state."""

    init: Callable[[Params], State]
    update: Callable[[Params, State, Params], tuple[Params, State]]


def _stateless(fn: Callable[[Params, Params], Params]) -> Transform:
    return Transform(lambda params: (), lambda grads, state, params: (fn(grads, params), state))


def _selected(mask: Mask, params: Params) -> Mapping[str, bool]:
    if mask is None:
        return dict.fromkeys(params, True)
    return mask(params) if callable(mask) else mask


def chain(*transforms: Transform) -> Transform:
    """The transforms applied one after another; the state is the tuple of their states."""

    def init(params: Params) -> State:
        return tuple(t.init(params) for t in transforms)

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    return Transform(init, update)


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates``, parameter by parameter."""
    new = {}
    for k, p in params.items():  # a loop, not a comprehension: no function object per step
        new[k] = p + updates[k]
    return new


def scale(factor: float) -> Transform:
    """``updates = factor * grads``."""
    return _stateless(lambda grads, params: {k: factor * g for k, g in grads.items()})


def batch_mean(batch_size: int) -> Transform:
    """``grads / batch_size``: the summed minibatch gradient as the books' mean."""
    size = float(batch_size) if isinstance(batch_size, int) else batch_size  # the int's quotient, sooner
    return _stateless(lambda grads, params: {k: g / size for k, g in grads.items()})


def add_decayed_weights(wd: float, mask: Mask = None) -> Transform:
    """``grads + wd * params`` on the masked parameters: coupled weight decay (an L2 penalty
    ``wd/2 ||p||^2`` added to the loss). Put it before the optimizer's scaling."""

    def fn(grads: Params, params: Params) -> Params:
        on = _selected(mask, params)
        return {k: g + wd * params[k] if on.get(k, False) else g for k, g in grads.items()}

    return _stateless(fn)


def decoupled_decay(wd: float, lr: float = 1.0, *, lr_scaled: bool = True, mask: Mask = None) -> Transform:
    """``updates - (lr * wd) * params`` (or ``- wd * params`` with ``lr_scaled=False``) on the masked
    parameters: the decay of AdamW (Loshchilov & Hutter, 2019), applied to the weights directly instead
    of through the gradient. Put it after the optimizer's scaling."""
    rate = lr * wd if lr_scaled else wd

    def fn(updates: Params, params: Params) -> Params:
        on = _selected(mask, params)
        return {k: u - rate * params[k] if on.get(k, False) else u for k, u in updates.items()}

    return _stateless(fn)


def trace(ops: Any, beta: float, nesterov: bool = False, dampening: float = 0.0) -> Transform:
    """Momentum as PyTorch's SGD keeps it: ``buf = beta * buf + (1 - dampening) * g`` (``buf = g`` on the
    first step), returning ``buf``, or ``g + beta * buf`` with ``nesterov=True``."""

    def init(params: Params) -> State:
        return (0, {k: ops.zeros_like(p) for k, p in params.items()})

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        count, bufs = state
        new = {}
        for k, g in grads.items():  # (1 - 0) * g is g: no multiply without dampening
            new[k] = g if count == 0 else beta * bufs[k] + ((1 - dampening) * g if dampening else g)
        out = {k: g + beta * new[k] for k, g in grads.items()} if nesterov else new
        return out, (count + 1, new)

    return Transform(init, update)


def scale_by_adam(ops: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Transform:
    """Adam's direction ``m_hat / (sqrt(v_hat) + eps)`` with bias-corrected moment estimates."""

    def init(params: Params) -> State:
        zeros = {k: ops.zeros_like(p) for k, p in params.items()}
        return (0, zeros, dict(zeros))

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        count, mu, nu = state
        t = count + 1
        mu = {k: b1 * mu[k] + (1 - b1) * g for k, g in grads.items()}
        nu = {k: b2 * nu[k] + (1 - b2) * (g * g) for k, g in grads.items()}
        c1, c2 = 1 - b1**t, 1 - b2**t
        out = {k: (mu[k] / c1) / (ops.sqrt(nu[k] / c2) + eps) for k in grads}
        return out, (t, mu, nu)

    return Transform(init, update)


def masked(inner: Transform, mask: Mask) -> Transform:
    """``inner`` on the masked parameters only; the others' gradients pass through unchanged."""

    def pick(tree: Params, on: Mapping[str, bool]) -> Params:
        return {k: v for k, v in tree.items() if on.get(k, False)}

    def init(params: Params) -> State:
        return inner.init(pick(params, _selected(mask, params)))

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        on = _selected(mask, params)
        inner_updates, state = inner.update(pick(grads, on), state, pick(params, on))
        return {k: inner_updates.get(k, g) for k, g in grads.items()}, state

    return Transform(init, update)


# --- the named optimizers of Config.optimizer ------------------------------------------------------

#: Each optimizer's keyword arguments and their defaults (Config.optimizer_args overrides them).
OPTIMIZER_ARGS: dict[str, dict[str, float | bool]] = {
    "sgd": {},
    "momentum": {"beta": 0.9, "nesterov": False, "dampening": 0.0},
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
}
DECAYS = ("coupled", "decoupled", "independent")


def sgd(lr: float, batch_size: int) -> Transform:
    """The books' minibatch SGD on summed gradients: ``updates = (-lr * g) / batch_size``."""
    return chain(scale(-lr), batch_mean(batch_size))


def make_optimizer(
    ops: Any, name: str, lr: float, batch_size: int, args: Mapping[str, Any] | None = None, *,
    wd: float = 0.0, decay: str = "coupled", mask: Mask = None, scalar: Callable[[float], Any] | None = None,
) -> Transform:
    """The optimizer ``name`` with ``args`` (see :data:`OPTIMIZER_ARGS`), on summed minibatch gradients,
    with weight decay ``wd`` applied as ``decay`` says on the ``mask``-ed parameters:

    - "coupled": ``wd * p`` added to the mean gradient (PyTorch's ``weight_decay``; for SGD, the L2
      penalty ``wd/2 ||p||^2``);
    - "decoupled": ``p`` shrunk by ``lr * wd`` per step, outside the optimizer (AdamW);
    - "independent": ``p`` shrunk by ``wd`` per step, not scaled by the learning rate.

    ``scalar`` (optional) turns each constant, computed in Python floats, into the form the arrays
    multiply fastest by (NumPy: a 0-d array of the run's dtype, which rounds it as the float would be
    rounded, without NumPy 1.x's per-call inspection of a Python scalar); the same numbers either way.
    """
    kw = {**OPTIMIZER_ARGS[name], **(args or {})}
    c = scalar or (lambda x: x)
    head = [batch_mean(c(float(batch_size)))]
    if wd and decay == "coupled":
        head.append(add_decayed_weights(c(wd), mask))
    tail = []
    if wd and decay != "coupled":  # the rate lr * wd (or wd) rounded once, as decoupled_decay does
        rate = lr * wd if decay == "decoupled" else wd
        tail.append(decoupled_decay(c(rate), lr_scaled=False, mask=mask))
    if name == "sgd":
        if len(head) == 1 and not tail:
            return sgd(lr, batch_size) if scalar is None else chain(scale(c(-lr)), *head)
        direction: list[Transform] = []
    elif name == "momentum":
        direction = [trace(ops, c(kw["beta"]), bool(kw["nesterov"]), kw["dampening"])]
    else:  # Adam's bias corrections are Python floats of the step count: its constants stay floats
        direction = [scale_by_adam(ops, kw["b1"], kw["b2"], kw["eps"])]
    return chain(*head, *direction, scale(c(-lr)), *tail)
