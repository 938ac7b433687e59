"""The gluonbook chapter as its MXNet code runs it: the book's random draws, and Gluon weight decay.

``gluonbook_problems`` replays the draws of seed text 003 without training: ``mx.random.seed(s)`` and
``random.seed(s)``; features (train and test in one ``nd.random.normal`` call), label noise, then for
each ``fit_and_plot`` call a new ``w`` from ``nd.random.normal`` and, per epoch, gluonbook's
``data_iter`` order (``random.shuffle`` of the training indices).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd

from wdlib import Config, Problem
from wdlib.model import Params


def concise_step(config: Config, params: Params) -> Any:
    """Gluon's way: ``nn.Dense(1)``, ``gluon.loss.L2Loss`` and a ``gluon.Trainer`` with ``wd``; the bias
    is excluded from decay by ``wd_mult = 0`` unless ``config.decay_bias``."""
    net = gluon.nn.Dense(1, in_units=params["w"].shape[0], dtype=config.dtype)
    net.initialize(init.Zero())
    net.weight.set_data(params["w"].T)
    net.bias.set_data(params["b"])
    if not config.decay_bias:
        net.bias.wd_mult = 0
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": config.lr, "wd": config.wd})
    loss = gluon.loss.L2Loss()

    def step(params: Params, X: Any, y: Any) -> Params:
        with autograd.record():
            l = loss(net(X), y)
        l.backward()
        trainer.step(config.batch_size)
        return {"w": net.weight.data().T, "b": net.bias.data()}

    return step


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
