"""The d2l chapter as its PyTorch code runs it: concise training, and the book's random draws.

``d2l_problems`` replays every draw the book's notebook makes from the torch random stream, in the
book's order, without training: ``d2l.synthetic_data`` for train then test data, the initial
parameters of each call (``torch.normal`` for ``train``, ``nn.Linear`` then ``normal_()`` on weight and
bias for ``train_concise``), and each pass over the ``DataLoader``s (an iterator draws a base seed, a
shuffled one also its sampler's seed), including the evaluation passes every 5 epochs. Loaders over
index datasets stand in for the book's, so the sampler draws are the book's draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import data

from wdlib import Config, ConfigError, Problem
from wdlib.model import Params

EVAL_EVERY = 5  # the book adds a point to its Animator every 5 epochs


def concise_step(config: Config, params: Params) -> Any:
    """The seed's ``train_concise`` step: ``nn.MSELoss``, ``torch.optim.SGD`` with weight decay on a
    parameter group holding only the weight (the bias too if ``config.decay_bias``)."""
    weight = nn.Parameter(params["w"].detach().T.contiguous())
    bias = nn.Parameter(params["b"].detach().clone())
    bias_decay = config.wd if config.decay_bias else 0.0
    trainer = torch.optim.SGD(
        [{"params": weight, "weight_decay": config.wd}, {"params": bias, "weight_decay": bias_decay}],
        lr=config.lr,
    )
    loss = nn.MSELoss()
    current = {"w": weight.detach().T, "b": bias.detach()}  # views: the optimizer updates them in place

    def step(params: Params, X: Any, y: Any) -> Params:
        with torch.enable_grad():
            trainer.zero_grad()
            l = loss(F.linear(X, weight, bias), y)
        l.backward()
        trainer.step()
        return current

    return step


def concise_loss(params: Params, X: Any, y: Any) -> Any:
    """``nn.MSELoss()`` of the ``nn.Linear`` model: mean of (y_hat - y)^2, no 1/2."""
    out = F.linear(X, params["w"].T, params["b"])
    return F.mse_loss(out, y.reshape(out.shape))


def _synthetic_data(w: Any, b: float, num_examples: int, noise: float) -> tuple[Any, Any]:
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, noise, y.shape)
    return X, y.reshape((-1, 1))


def _index_loader(n: int, batch_size: int, shuffle: bool) -> data.DataLoader:
    """``d2l.load_array``'s loader over the indices 0..n-1 instead of the data."""
    return data.DataLoader(data.TensorDataset(torch.arange(n)), batch_size, shuffle=shuffle)


def _order(loader: data.DataLoader) -> np.ndarray:
    return torch.cat([idx for (idx,) in loader]).numpy()


def _float64(x: Any) -> np.ndarray:
    return x.detach().double().numpy()


def d2l_problems(configs: Sequence[Config]) -> list[Problem]:
    first = configs[0]
    if any(c.num_epochs < EVAL_EVERY for c in configs):
        raise ConfigError("num_epochs", min(c.num_epochs for c in configs),
                          f"an integer >= {EVAL_EVERY} with rng='native' (d2l records every 5 epochs)")
    torch.manual_seed(first.seed)
    true_w = torch.ones((first.num_inputs, 1)) * first.true_w
    X, y = _synthetic_data(true_w, first.true_b, first.n_train, first.noise)
    train_iter = _index_loader(first.n_train, first.batch_size, shuffle=True)
    X_test, y_test = _synthetic_data(true_w, first.true_b, first.n_test, first.noise)
    test_iter = _index_loader(first.n_test, first.batch_size, shuffle=False)

    problems = []
    for config in configs:
        if config.mode == "scratch":
            w0 = torch.normal(0, 1, size=(config.num_inputs, 1))
            b0 = torch.zeros(1)
        else:
            layer = nn.Linear(config.num_inputs, 1)
            for param in layer.parameters():
                param.data.normal_()
            w0, b0 = layer.weight.T, layer.bias
        batch_order, eval_orders = [], []
        for epoch in range(config.num_epochs):
            batch_order.append(_order(train_iter))
            if (epoch + 1) % EVAL_EVERY == 0:
                eval_orders.append(_order(train_iter))
                _order(test_iter)
        problems.append(Problem(
            X_train=_float64(X), y_train=_float64(y), X_test=_float64(X_test), y_test=_float64(y_test),
            init={"w": _float64(w0), "b": _float64(b0)}, batch_order=np.stack(batch_order).astype(np.int64),
            batch_size=config.batch_size, eval_every=EVAL_EVERY,
            eval_orders=np.stack(eval_orders).astype(np.int64),
        ))
    return problems
