"""The gluonbook chapter as its MXNet code runs it: the book's random draws, and Gluon weight decay.

``gluonbook_problems`` replays the draws of seed text 003 without training: ``mx.random.seed(s)`` and
``random.seed(s)``; features (train and test in one ``nd.random.normal`` call), label noise, then for
each ``fit_and_plot`` call a new ``w`` from ``nd.random.normal`` and, per epoch, gluonbook's
``data_iter`` order (``random.shuffle`` of the training indices).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd

from wdlib import Config, Problem
from wdlib.model import Params, decay_mask
from wdlib.optim import OPTIMIZER_ARGS
from wdlib.semantics import native_spelling


def _layers(config: Config) -> list[tuple[str, str]]:
    if config.model == "linear":
        return [("w", "b")]
    return [(f"W{i}", f"b{i}") for i in range(1, len(config.hidden) + 2)]


def concise_step(config: Config, params: Params) -> Any:
    """Gluon's way, for any model: ``nn.Dense``'s ``FullyConnected`` layers, ``gluon.loss.L2Loss`` and a
    ``gluon.Trainer`` ('sgd' with or without momentum, 'nag', 'adam') with ``wd``, the parameters not
    decayed (the biases unless ``config.decay_bias``) given ``wd_mult = 0``; AdamW through
    ``nd.contrib.adamw_update`` (1.9.1 has no AdamW optimizer class), with ``wd = 0`` for those."""
    mask = decay_mask(params, config.decay_bias, config.penalize)
    a = {**OPTIMIZER_ARGS[config.optimizer], **dict(config.optimizer_args)}
    key = native_spelling("mxnet", config.optimizer, config.decay, a).key
    leaves = {}
    for k, p in params.items():
        data = p.T if p.ndim == 2 else p  # Dense's layout: (out, in)
        leaves[k] = gluon.Parameter(k, shape=data.shape, dtype=config.dtype)
        leaves[k].initialize(init.Zero())
        leaves[k].set_data(data)
        leaves[k].wd_mult = 1.0 if mask[k] else 0.0
    layers = [(leaves[w], leaves[b]) for w, b in _layers(config)]
    loss = gluon.loss.L2Loss()
    update = _adamw(config, key, a, leaves) if key.startswith("mxnet.adamw_update") else \
        _trainer(config, key, a, leaves)

    def step(params: Params, X: Any, y: Any) -> Params:
        with autograd.record():
            h = X
            for i, (weight, bias) in enumerate(layers):
                h = nd.FullyConnected(h, weight.data(), bias.data(), num_hidden=weight.shape[0])
                if i < len(layers) - 1:
                    h = nd.relu(h)
            l = loss(h, y)
        l.backward()
        update()
        return {k: v.data().T if v.data().ndim == 2 else v.data() for k, v in leaves.items()}

    return step


def _trainer(config: Config, key: str, a: dict[str, Any], leaves: dict[str, Any]) -> Any:
    options: dict[str, Any] = {"learning_rate": config.lr, "wd": config.wd}
    name = {"gluon.sgd": "sgd", "gluon.sgd(momentum)": "sgd", "gluon.nag": "nag", "gluon.adam": "adam"}[key]
    if config.optimizer == "momentum":
        options["momentum"] = a["beta"]
    if name == "adam":
        options.update(beta1=a["b1"], beta2=a["b2"], epsilon=a["eps"])
    trainer = gluon.Trainer(list(leaves.values()), name, options)
    return lambda: trainer.step(config.batch_size)


def _adamw(config: Config, key: str, a: dict[str, Any], leaves: dict[str, Any]) -> Any:
    """``adamw_update`` per parameter, Adam's bias correction folded into its ``lr`` as gluon's Adam
    does; decoupled: ``eta = lr`` (the decay scaled by lr); independent: ``eta = 1``."""
    states = {k: (nd.zeros_like(v.data()), nd.zeros_like(v.data())) for k, v in leaves.items()}
    rescale = nd.array([1.0 / config.batch_size], dtype="float32")  # the operator takes float32 only
    decoupled = key == "mxnet.adamw_update(eta=lr)"
    count = 0

    def update() -> None:
        nonlocal count
        count += 1
        correction = math.sqrt(1 - a["b2"] ** count) / (1 - a["b1"] ** count)
        lr, eta = (correction, config.lr) if decoupled else (config.lr * correction, 1.0)
        for k, v in leaves.items():
            mean, var = states[k]
            nd.contrib.adamw_update(v.data(), v.grad(), mean, var, rescale, lr=lr, eta=eta, beta1=a["b1"],
                                    beta2=a["b2"], epsilon=a["eps"], wd=config.wd * v.wd_mult,
                                    out=v.data())

    return update


def concise_loss(params: Params, X: Any, y: Any) -> Any:
    """``gluon.loss.L2Loss`` of the Dense model: (y_hat - y)^2 / 2 per example."""
    out = nd.FullyConnected(X, params["w"].T, params["b"], num_hidden=1)
    return gluon.loss.L2Loss()(out, y)


def _float64(x: Any) -> np.ndarray:
    return x.asnumpy().astype(np.float64)


def gluonbook_problems(configs: Sequence[Config]) -> list[Problem]:
    first = configs[0]
    mx.random.seed(first.seed)
    shuffler = random.Random(first.seed)  # the book seeds the global `random`; same stream
    n_train, n_test, num_inputs = first.n_train, first.n_test, first.num_inputs
    true_w = nd.ones((num_inputs, 1)) * first.true_w
    features = nd.random.normal(shape=(n_train + n_test, num_inputs))
    labels = nd.dot(features, true_w) + first.true_b
    labels += nd.random.normal(scale=first.noise, shape=labels.shape)

    problems = []
    for config in configs:
        w0 = nd.random.normal(scale=1, shape=(num_inputs, 1))
        order = []
        for _ in range(config.num_epochs):
            indices = list(range(n_train))
            shuffler.shuffle(indices)
            order.append(indices)
        problems.append(Problem(
            X_train=_float64(features[:n_train, :]), y_train=_float64(labels[:n_train]),
            X_test=_float64(features[n_train:, :]), y_test=_float64(labels[n_train:]),
            init={"w": _float64(w0), "b": np.zeros(1)}, batch_order=np.array(order, dtype=np.int64),
            batch_size=config.batch_size,
        ))
    return problems
