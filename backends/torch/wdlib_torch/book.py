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
from wdlib.model import Params, decay_mask
from wdlib.optim import OPTIMIZER_ARGS
from wdlib.semantics import native_spelling

EVAL_EVERY = 5  # the book adds a point to its Animator every 5 epochs


def _layers(config: Config) -> list[tuple[str, str]]:
    """(weight, bias) names of each layer of the model, input to output."""
    if config.model == "linear":
        return [("w", "b")]
    return [(f"W{i}", f"b{i}") for i in range(1, len(config.hidden) + 2)]


def native_optimizer(key: str, groups: list[dict[str, Any]], config: Config) -> torch.optim.Optimizer:
    """The torch optimizer of spelling ``key`` (wdlib.semantics.SPELLINGS) over parameter ``groups``,
    each carrying its own ``weight_decay``."""
    a = {**OPTIMIZER_ARGS[config.optimizer], **dict(config.optimizer_args)}
    lr = config.lr
    if key == "torch.SGD":
        return torch.optim.SGD(groups, lr=lr)
    if key in ("torch.SGD(momentum)", "torch.SGD(nesterov)"):
        return torch.optim.SGD(groups, lr=lr, momentum=a["beta"], dampening=a["dampening"],
                               nesterov=bool(a["nesterov"]))
    betas = (a["b1"], a["b2"])
    if key == "torch.Adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=a["eps"])
    if key == "torch.AdamW":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=a["eps"])
    if key == "torch.Adam(decoupled_weight_decay=True)":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=a["eps"], decoupled_weight_decay=True)
    raise ConfigError("spelling", key, "a torch spelling of wdlib.semantics.SPELLINGS")


def concise_step(config: Config, params: Params, spelling: str | None = None) -> Any:
    """d2l's ``train_concise`` step for any model and optimizer: ``nn.MSELoss`` and the torch optimizer
    of ``config`` (``spelling``: one of its variants), one parameter group per parameter whose
    ``weight_decay`` is ``config.wd`` on the decayed ones (the weights; the biases with
    ``config.decay_bias``; or ``config.penalize``) and 0 on the others."""
    mask = decay_mask(params, config.decay_bias, config.penalize)
    args = dict(config.optimizer_args)
    key = spelling or native_spelling("torch", config.optimizer, config.decay, args).key
    # nn.Linear's layout: weights stored (out, in); the views below give wdlib's (in, out) back.
    leaves = {k: nn.Parameter((p.detach().T.contiguous() if p.ndim == 2 else p.detach()).clone())
              for k, p in params.items()}
    groups = [{"params": [leaf], "weight_decay": config.wd if mask[k] else 0.0} for k, leaf in leaves.items()]
    trainer = native_optimizer(key, groups, config)
    loss = nn.MSELoss()
    layers = [(leaves[w], leaves[b]) for w, b in _layers(config)]
    current = {k: leaf.detach().T if leaf.ndim == 2 else leaf.detach() for k, leaf in leaves.items()}

    def step(params: Params, X: Any, y: Any) -> Params:
        with torch.enable_grad():
            trainer.zero_grad()
            h = X
            for i, (weight, bias) in enumerate(layers):
                h = F.linear(h, weight, bias)
                if i < len(layers) - 1:
                    h = torch.relu(h)
            l = loss(h, y)
        l.backward()
        trainer.step()
        return current  # views: the optimizer updates the leaves in place

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
