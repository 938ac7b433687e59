"""Oracle: the gluonbook chapter's MXNet code (seed text 003), with the gluonbook helpers it calls.

Plotting is replaced by lists; every NDArray operation and every random draw is the book's, in the
book's order. ``run_book(seed)`` seeds ``mx.random`` and ``random`` and then calls ``fit_and_plot``
for each lambda in one process, as the notebook does (the second call draws a new w from the
continuing stream).
"""

from __future__ import annotations

import random

import numpy as np

np.bool = bool  # mxnet 1.9.1 refers to np.bool, removed in NumPy 1.24
import mxnet as mx  # noqa: E402
from mxnet import autograd, nd  # noqa: E402


# --- gluonbook helpers ----------------------------------------------------------------------------
def data_iter(batch_size, num_examples, features, labels):
    indices = list(range(num_examples))
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        j = nd.array(indices[i : min(i + batch_size, num_examples)])
        yield features.take(j), labels.take(j)


def linreg(X, w, b):
    return nd.dot(X, w) + b


def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    for param in params:
        param[:] = param - lr * param.grad / batch_size


# --- the chapter ----------------------------------------------------------------------------------
def run_book(seed: int, num_epochs: int = 10, lambds=(0, 5)) -> list[dict]:
    mx.random.seed(seed)
    random.seed(seed)
    n_train, n_test, num_inputs = 20, 100, 200
    true_w = nd.ones((num_inputs, 1)) * 0.01
    true_b = 0.05
    features = nd.random.normal(shape=(n_train + n_test, num_inputs))
    labels = nd.dot(features, true_w) + true_b
    labels += nd.random.normal(scale=0.01, shape=labels.shape)
    train_features, test_features = features[:n_train, :], features[n_train:, :]
    train_labels, test_labels = labels[:n_train], labels[n_train:]

    def init_params():
        w = nd.random.normal(scale=1, shape=(num_inputs, 1))
        b = nd.zeros(shape=(1,))
        params = [w, b]
        for param in params:
            param.attach_grad()
        return params

    def l2_penalty(w):
        return (w**2).sum() / 2

    batch_size, lr = 1, 0.003
    net, loss = linreg, squared_loss

    def fit_and_plot(lambd):
        w, b = params = init_params()
        train_ls, test_ls = [], []
        for _ in range(num_epochs):
            for X, y in data_iter(batch_size, n_train, features, labels):
                with autograd.record():
                    l = loss(net(X, w, b), y) + lambd * l2_penalty(w)
                l.backward()
                sgd(params, lr, batch_size)
            train_ls.append(loss(net(train_features, w, b), train_labels).mean().asscalar())
            test_ls.append(loss(net(test_features, w, b), test_labels).mean().asscalar())
        return {"train": train_ls, "test": test_ls, "w": w.asnumpy(), "b": b.asnumpy(),
                "norm": w.norm().asscalar()}

    return [fit_and_plot(lambd) for lambd in lambds]
