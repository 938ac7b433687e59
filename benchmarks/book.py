"""The chapter's run written by hand, the way the books (and users) write it: the baselines.

Each function trains on a :class:`wdlib.Problem` (the same inputs wdlib uses: data, initial weights,
the batch order of every epoch) for ``num_epochs``, recording the whole-set train and test loss after
every epoch, and returns ``(train_loss, test_loss, w)`` as NumPy arrays. Framework imports are inside
the functions, so importing this module imports none.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


class EpochSampler:
    """Yields the Problem's batch order of epoch 0, 1, 2, ... on successive iterations (so a book's
    ``DataLoader(shuffle=True)`` draws exactly wdlib's minibatches)."""

    def __init__(self, order: np.ndarray) -> None:
        self.order, self.epoch = order, 0

    def __iter__(self) -> Any:
        order = self.order[self.epoch % len(self.order)]
        self.epoch += 1
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.order.shape[1]


def numpy_loop(problem: Any, lr: float, lambd: float, num_epochs: int, dtype: str) -> tuple:
    """A straightforward NumPy loop: gather the minibatch, hand-derived gradient, update."""
    X, y = problem.X_train.astype(dtype), problem.y_train.astype(dtype)
    Xt, yt = problem.X_test.astype(dtype), problem.y_test.astype(dtype)
    w, b = problem.w0.astype(dtype), problem.b0.astype(dtype)
    bs = problem.batch_size
    train, test = [], []
    for epoch in range(num_epochs):
        for idx in problem.batches(epoch):
            Xb, yb = X[idx], y[idx]
            r = Xb @ w + b - yb
            w = w - lr * (Xb.T @ r + len(idx) * lambd * w) / bs
            b = b - lr * r.sum(axis=0) / bs
        train.append(float(((X @ w + b - y) ** 2 / 2).mean()))
        test.append(float(((Xt @ w + b - yt) ** 2 / 2).mean()))
    return np.array(train), np.array(test), w


def torch_d2l(problem: Any, lr: float, lambd: float, num_epochs: int, dtype: str,
              loader: bool = True) -> tuple:
    """d2l's from-scratch code (section 3.7): a DataLoader, autograd, ``d2l.sgd``; ``loader=False``
    indexes the tensors directly instead (the same loop minus the DataLoader)."""
    import torch
    from torch.utils import data

    dt = getattr(torch, dtype)
    X, y = torch.tensor(problem.X_train, dtype=dt), torch.tensor(problem.y_train, dtype=dt)
    Xt, yt = torch.tensor(problem.X_test, dtype=dt), torch.tensor(problem.y_test, dtype=dt)
    w = torch.tensor(problem.w0, dtype=dt).requires_grad_()
    b = torch.tensor(problem.b0, dtype=dt).requires_grad_()
    bs = problem.batch_size
    if loader:
        train_iter = data.DataLoader(data.TensorDataset(X, y), bs,
                                     sampler=EpochSampler(problem.batch_order))
    net = lambda X: torch.matmul(X, w) + b  # noqa: E731
    loss = lambda y_hat, y: (y_hat - y.reshape(y_hat.shape)) ** 2 / 2  # noqa: E731
    l2_penalty = lambda w: torch.sum(w.pow(2)) / 2  # noqa: E731
    train, test = [], []
    for epoch in range(num_epochs):
        batches = train_iter if loader else (
            (X[i], y[i]) for i in (torch.from_numpy(j) for j in problem.batches(epoch)))
        for Xb, yb in batches:
            l = loss(net(Xb), yb) + lambd * l2_penalty(w)
            l.sum().backward()
            with torch.no_grad():
                for param in (w, b):
                    param -= lr * param.grad / bs
                    param.grad.zero_()
        with torch.no_grad():
            train.append(loss(net(X), y).mean().item())
            test.append(loss(net(Xt), yt).mean().item())
    return np.array(train), np.array(test), w.detach().numpy()


def mxnet_gluonbook(problem: Any, lr: float, lambd: float, num_epochs: int, dtype: str,
                    loader: bool = True) -> tuple:
    """The gluonbook's code (section 3.12): ``gdata.DataLoader``, ``autograd.record``, ``d2l.sgd``;
    ``loader=False`` takes the minibatch rows with ``nd.take`` instead."""
    if "bool" not in vars(np):
        np.bool = bool  # type: ignore[attr-defined]
    from mxnet import autograd, nd
    from mxnet.gluon import data as gdata

    X, y = nd.array(problem.X_train, dtype=dtype), nd.array(problem.y_train, dtype=dtype)
    Xt, yt = nd.array(problem.X_test, dtype=dtype), nd.array(problem.y_test, dtype=dtype)
    w, b = nd.array(problem.w0, dtype=dtype), nd.array(problem.b0, dtype=dtype)
    w.attach_grad()
    b.attach_grad()
    bs = problem.batch_size
    if loader:
        train_iter = gdata.DataLoader(gdata.ArrayDataset(X, y), bs,
                                      sampler=EpochSampler(problem.batch_order))
    net = lambda X, w, b: nd.dot(X, w) + b  # noqa: E731
    loss = lambda y_hat, y: (y_hat - y.reshape(y_hat.shape)) ** 2 / 2  # noqa: E731
    l2_penalty = lambda w: (w**2).sum() / 2  # noqa: E731
    train, test = [], []
    for epoch in range(num_epochs):
        batches = train_iter if loader else (
            (X.take(i), y.take(i)) for i in (nd.array(j) for j in problem.batches(epoch)))
        for Xb, yb in batches:
            with autograd.record():
                l = loss(net(Xb, w, b), yb) + lambd * l2_penalty(w)
            l.backward()
            for param in (w, b):
                param[:] = param - lr * param.grad / bs
        train.append(loss(net(X, w, b), y).mean().asscalar())
        test.append(loss(net(Xt, w, b), yt).mean().asscalar())
    return np.array(train), np.array(test), w.asnumpy()


@functools.cache
def _jax_functions(jit: bool) -> tuple:
    """``jax.grad`` of the minibatch objective (jitted unless ``jit=False``) and a jitted mean loss,
    made once per process, as a user's module-level ``@jax.jit`` functions would be: compiled once per
    shape, not on every run."""
    import jax
    import jax.numpy as jnp

    def objective(params: dict, X: Any, y: Any, lambd: Any) -> Any:
        l = (X @ params["w"] + params["b"] - y) ** 2 / 2 + lambd * jnp.sum(params["w"] ** 2) / 2
        return l.sum()

    def mean_loss(params: dict, X: Any, y: Any) -> Any:
        return jnp.mean((X @ params["w"] + params["b"] - y) ** 2 / 2)

    grad = jax.grad(objective)
    return (jax.jit(grad) if jit else grad), jax.jit(mean_loss)


def jax_grad_loop(problem: Any, lr: float, lambd: float, num_epochs: int, dtype: str,
                  jit: bool = True) -> tuple:
    """A per-step JAX loop: ``jax.grad`` of the minibatch objective (``jax.jit``-compiled unless
    ``jit=False``), the update in Python, the losses with a jitted evaluation."""
    import jax.numpy as jnp

    X, y = jnp.asarray(problem.X_train, dtype), jnp.asarray(problem.y_train, dtype)
    Xt, yt = jnp.asarray(problem.X_test, dtype), jnp.asarray(problem.y_test, dtype)
    params = {"w": jnp.asarray(problem.w0, dtype), "b": jnp.asarray(problem.b0, dtype)}
    bs = problem.batch_size
    grad, mean_loss = _jax_functions(jit)
    lambd = jnp.asarray(lambd, dtype)
    train, test = [], []
    for epoch in range(num_epochs):
        for idx in problem.batches(epoch):
            g = grad(params, X[idx], y[idx], lambd)
            params = {k: p - lr * g[k] / bs for k, p in params.items()}
        train.append(float(mean_loss(params, X, y)))
        test.append(float(mean_loss(params, Xt, yt)))
    return np.array(train), np.array(test), np.asarray(params["w"])
