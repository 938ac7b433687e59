"""Oracle: the d2l chapter's PyTorch code (seed text 000), transcribed with the d2l helpers it calls.

Only the plotting (d2l.Animator) is replaced by lists; every tensor operation and every draw from the
torch random stream is the book's, in the book's order. ``run_book(seed)`` runs the chapter's four
calls in one process, as the notebook does: train(0), train(3), train_concise(0), train_concise(3).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils import data


# --- d2l helpers (d2l/torch.py) -------------------------------------------------------------------
def synthetic_data(w, b, num_examples):
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))


def load_array(data_arrays, batch_size, is_train=True):
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train)


def linreg(X, w, b):
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


class Accumulator:
    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args, strict=True)]

    def __getitem__(self, idx):
        return self.data[idx]


def evaluate_loss(net, data_iter, loss):
    metric = Accumulator(2)
    for X, y in data_iter:
        out = net(X)
        y = y.reshape(out.shape)
        l = loss(out, y)
        metric.add(l.sum(), l.numel())
    return metric[0] / metric[1]


# --- the chapter ----------------------------------------------------------------------------------
def run_book(seed: int, num_epochs: int = 100, wds=(0, 3), lambds=(0, 3)) -> list[dict]:
    torch.manual_seed(seed)
    n_train, n_test, num_inputs, batch_size = 20, 100, 200, 5
    true_w, true_b = torch.ones((num_inputs, 1)) * 0.01, 0.05
    train_data = synthetic_data(true_w, true_b, n_train)
    train_iter = load_array(train_data, batch_size)
    test_data = synthetic_data(true_w, true_b, n_test)
    test_iter = load_array(test_data, batch_size, is_train=False)

    def init_params():
        w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        return [w, b]

    def l2_penalty(w):
        return torch.sum(w.pow(2)) / 2

    def train(lambd):
        w, b = init_params()
        net, loss = lambda X: linreg(X, w, b), squared_loss
        lr = 0.003
        record = {"train": [], "test": []}
        for epoch in range(num_epochs):
            for X, y in train_iter:
                with torch.enable_grad():
                    l = loss(net(X), y) + lambd * l2_penalty(w)
                l.sum().backward()
                sgd([w, b], lr, batch_size)
            if (epoch + 1) % 5 == 0:
                record["train"].append(evaluate_loss(net, train_iter, loss))
                record["test"].append(evaluate_loss(net, test_iter, loss))
        record["norm"] = torch.norm(w).item()
        record["w"], record["b"] = w.detach().numpy().copy(), b.detach().numpy().copy()
        return record

    def train_concise(wd):
        net = nn.Sequential(nn.Linear(num_inputs, 1))
        for param in net.parameters():
            param.data.normal_()
        loss = nn.MSELoss()
        lr = 0.003
        trainer = torch.optim.SGD(
            [{"params": net[0].weight, "weight_decay": wd}, {"params": net[0].bias}], lr=lr
        )
        record = {"train": [], "test": []}
        for epoch in range(num_epochs):
            for X, y in train_iter:
                with torch.enable_grad():
                    trainer.zero_grad()
                    l = loss(net(X), y)
                l.backward()
                trainer.step()
            if (epoch + 1) % 5 == 0:
                record["train"].append(evaluate_loss(net, train_iter, loss))
                record["test"].append(evaluate_loss(net, test_iter, loss))
        record["norm"] = net[0].weight.norm().item()
        record["w"] = net[0].weight.detach().numpy().T.copy()
        record["b"] = net[0].bias.detach().numpy().copy()
        return record

    return [train(lambd) for lambd in lambds] + [train_concise(wd) for wd in wds]
