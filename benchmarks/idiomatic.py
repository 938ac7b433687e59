"""The new optimizers and the MLP written by hand, the way each framework's users write them: the
baselines of wdlib's eager runs of the same settings (benchmarks/run.py, "optimizers and the MLP").

Each ``SPECS`` entry is a setting of wdlib's Config and the same training in a framework's idiom: a
plain PyTorch loop with ``torch.optim``, a JAX loop with optax and a ``jax.jit``-compiled step, a
gluon ``Trainer`` loop (MXNet), a NumPy loop with the update written out. Every loop trains on a
:class:`wdlib.Problem` (its data, initial parameters and batch order) on the mean squared loss / 2 of
each minibatch, weight decay on the weight matrices only, and records the whole-set train and test
loss after every epoch; it returns ``(train_loss, test_loss)``. Framework imports are inside the
functions.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

#: name -> (wdlib Config fields, the optimizer in the loops' terms).
SPECS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "momentum": ({"optimizer": "momentum", "wd": 0.5, "decay": "coupled"},
                 {"opt": "momentum", "lr": 0.003, "wd": 0.5, "beta": 0.9}),
    "adam": ({"optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "coupled"},
             {"opt": "adam", "lr": 0.01, "wd": 0.5}),
    "adamw": ({"optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "decoupled"},
              {"opt": "adamw", "lr": 0.01, "wd": 0.5}),
    "mlp": ({"model": "mlp", "hidden": (32,), "lambd": 0.5},
            {"opt": "sgd", "lr": 0.003, "wd": 0.5}),
}
B1, B2, EPS = 0.9, 0.999, 1e-8


def layers(init: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """(weight, bias) names, input layer first: [("w", "b")] or [("W1", "b1"), ("W2", "b2"), ...]."""
    if "w" in init:
        return [("w", "b")]
    return [(f"W{i}", f"b{i}") for i in range(1, len(init) // 2 + 1)]


def numpy_loop(problem: Any, spec: dict[str, Any], num_epochs: int, dtype: str) -> tuple:
    """The forward pass, its backward pass and the optimizer's update written out in NumPy."""
    X, y = problem.X_train.astype(dtype), problem.y_train.astype(dtype)
    Xt, yt = problem.X_test.astype(dtype), problem.y_test.astype(dtype)
    p = {k: v.astype(dtype) for k, v in problem.init.items()}
    names = layers(p)
    lr, wd, opt = spec["lr"], spec["wd"], spec["opt"]
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    weights = {w for w, _ in names}

    def forward(A: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        acts = [A]
        for i, (w, b) in enumerate(names):
            A = A @ p[w] + p[b]
            if i < len(names) - 1:
                A = np.maximum(A, 0)
            acts.append(A)
        return A, acts

    def mean_loss(A: np.ndarray, t: np.ndarray) -> float:
        return float(((forward(A)[0] - t) ** 2 / 2).mean())

    train, test, t = [], [], 0
    for epoch in range(num_epochs):
        for idx in problem.batches(epoch):
            Xb, yb = X[idx], y[idx]
            out, acts = forward(Xb)
            g = (out - yb) / len(idx)
            grads = {}
            for i in range(len(names) - 1, -1, -1):
                w, b = names[i]
                grads[w], grads[b] = acts[i].T @ g, g.sum(axis=0)
                if i:
                    g = (g @ p[w].T) * (acts[i] > 0)
            t += 1
            for k, gk in grads.items():
                if opt != "adamw" and k in weights:
                    gk = gk + wd * p[k]
                if opt in ("sgd",):
                    p[k] = p[k] - lr * gk
                elif opt == "momentum":
                    m[k] = gk if t == 1 else spec["beta"] * m[k] + gk
                    p[k] = p[k] - lr * m[k]
                else:
                    m[k] = B1 * m[k] + (1 - B1) * gk
                    v2[k] = B2 * v2[k] + (1 - B2) * gk * gk
                    step = (m[k] / (1 - B1**t)) / (np.sqrt(v2[k] / (1 - B2**t)) + EPS)
                    p[k] = p[k] - lr * step - (lr * wd * p[k] if opt == "adamw" and k in weights else 0)
        train.append(mean_loss(X, y))
        test.append(mean_loss(Xt, yt))
    return np.array(train), np.array(test)


def torch_loop(problem: Any, spec: dict[str, Any], num_epochs: int, dtype: str) -> tuple:
    """A plain PyTorch loop: tensors with ``requires_grad``, ``torch.optim`` (SGD with momentum, Adam,
    AdamW) with ``weight_decay`` on the weights' parameter group, ``zero_grad``/``backward``/``step``."""
    import torch

    dt = getattr(torch, dtype)
    X, y = torch.tensor(problem.X_train, dtype=dt), torch.tensor(problem.y_train, dtype=dt)
    Xt, yt = torch.tensor(problem.X_test, dtype=dt), torch.tensor(problem.y_test, dtype=dt)
    p = {k: torch.tensor(v, dtype=dt, requires_grad=True) for k, v in problem.init.items()}
    names = layers(problem.init)
    groups = [{"params": [p[w] for w, _ in names], "weight_decay": spec["wd"]},
              {"params": [p[b] for _, b in names], "weight_decay": 0.0}]
    opt, lr = spec["opt"], spec["lr"]
    if opt in ("sgd", "momentum"):
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=spec.get("beta", 0.0))
    elif opt == "adam":
        optimizer = torch.optim.Adam(groups, lr=lr, betas=(B1, B2), eps=EPS)
    else:
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=(B1, B2), eps=EPS)

    def net(A: Any) -> Any:
        for i, (w, b) in enumerate(names):
            A = A @ p[w] + p[b]
            if i < len(names) - 1:
                A = torch.relu(A)
        return A

    order = torch.from_numpy(problem.batch_order)
    bs, n = problem.batch_size, problem.n_train
    train, test = [], []
    for epoch in range(num_epochs):
        for start in range(0, n, bs):
            idx = order[epoch, start : start + bs]
            loss = ((net(X[idx]) - y[idx]) ** 2 / 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            train.append(((net(X) - y) ** 2 / 2).mean().item())
            test.append(((net(Xt) - yt) ** 2 / 2).mean().item())
    return np.array(train), np.array(test)


@functools.cache
def _jax_step(names: tuple[tuple[str, str], ...], opt: str, lr: float, wd: float, beta: float) -> tuple:
    """A module-level optax optimizer with its ``jax.jit`` step and mean loss, as a user writes them
    once (compiled once per shape)."""
    import jax
    import jax.numpy as jnp
    import optax

    mask = {k: k == w for w, b in names for k in (w, b)}
    if opt in ("sgd", "momentum"):
        tx = optax.chain(optax.add_decayed_weights(wd, mask=mask), optax.sgd(lr, momentum=beta or None))
    elif opt == "adam":
        tx = optax.chain(optax.add_decayed_weights(wd, mask=mask), optax.adam(lr, b1=B1, b2=B2, eps=EPS))
    else:
        tx = optax.adamw(lr, b1=B1, b2=B2, eps=EPS, weight_decay=wd, mask=mask)

    def net(p: dict, A: Any) -> Any:
        for i, (w, b) in enumerate(names):
            A = A @ p[w] + p[b]
            if i < len(names) - 1:
                A = jax.nn.relu(A)
        return A

    def loss(p: dict, X: Any, y: Any) -> Any:
        return jnp.mean((net(p, X) - y) ** 2 / 2)

    @jax.jit
    def step(p: dict, state: Any, X: Any, y: Any, idx: Any) -> tuple:
        grads = jax.grad(loss)(p, X[idx], y[idx])
        updates, state = tx.update(grads, state, p)
        return optax.apply_updates(p, updates), state

    return tx, step, jax.jit(loss)


def jax_loop(problem: Any, spec: dict[str, Any], num_epochs: int, dtype: str) -> tuple:
    """A JAX loop: an optax optimizer, a ``jax.jit``-compiled step taking the minibatch's indices,
    the losses with a jitted evaluation."""
    import jax.numpy as jnp

    X, y = jnp.asarray(problem.X_train, dtype), jnp.asarray(problem.y_train, dtype)
    Xt, yt = jnp.asarray(problem.X_test, dtype), jnp.asarray(problem.y_test, dtype)
    p = {k: jnp.asarray(v, dtype) for k, v in problem.init.items()}
    names = tuple(layers(problem.init))
    tx, step, loss = _jax_step(names, spec["opt"], spec["lr"], spec["wd"], spec.get("beta", 0.0))
    state = tx.init(p)
    order = jnp.asarray(problem.batch_order)
    bs, n = problem.batch_size, problem.n_train
    train, test = [], []
    for epoch in range(num_epochs):
        for start in range(0, n, bs):
            p, state = step(p, state, X, y, order[epoch, start : start + bs])
        train.append(float(loss(p, X, y)))
        test.append(float(loss(p, Xt, yt)))
    return np.array(train), np.array(test)


def mxnet_loop(problem: Any, spec: dict[str, Any], num_epochs: int, dtype: str) -> tuple | None:
    """A gluon loop: the parameters as ``gluon.Parameter``s, ``autograd.record``, a ``gluon.Trainer``
    ('sgd' with momentum, 'adam') with ``wd`` and ``wd_mult = 0`` on the biases, ``step(batch_size)``.
    None for AdamW (MXNet 1.x has no decoupled decay)."""
    if spec["opt"] == "adamw":
        return None
    if "bool" not in vars(np):
        np.bool = bool  # type: ignore[attr-defined]
    from mxnet import autograd, gluon, nd

    X, y = nd.array(problem.X_train, dtype=dtype), nd.array(problem.y_train, dtype=dtype)
    Xt, yt = nd.array(problem.X_test, dtype=dtype), nd.array(problem.y_test, dtype=dtype)
    names = layers(problem.init)
    params = gluon.ParameterDict()
    for w, b in names:
        for k in (w, b):
            param = params.get(k, shape=problem.init[k].shape, dtype=dtype)
            param.initialize()
            param.set_data(nd.array(problem.init[k], dtype=dtype))
        params[b].wd_mult = 0.0
    p = {k: params[k].data() for k in problem.init}
    kw = {"learning_rate": spec["lr"], "wd": spec["wd"]}
    if spec["opt"] == "adam":
        kw.update(beta1=B1, beta2=B2, epsilon=EPS)
    else:
        kw["momentum"] = spec.get("beta", 0.0)
    trainer = gluon.Trainer(params, "adam" if spec["opt"] == "adam" else "sgd", kw)

    def net(A: Any) -> Any:
        for i, (w, b) in enumerate(names):
            A = nd.dot(A, p[w]) + p[b]
            if i < len(names) - 1:
                A = nd.relu(A)
        return A

    order = nd.array(problem.batch_order, dtype="int64")
    bs, n = problem.batch_size, problem.n_train
    train, test = [], []
    for epoch in range(num_epochs):
        for start in range(0, n, bs):
            idx = order[epoch, start : start + bs]
            with autograd.record():
                loss = (net(X.take(idx)) - y.take(idx)) ** 2 / 2
            loss.backward()
            trainer.step(bs)
        train.append(((net(X) - y) ** 2 / 2).mean().asscalar())
        test.append(((net(Xt) - yt) ** 2 / 2).mean().asscalar())
    return np.array(train), np.array(test)


LOOPS = {"numpy": numpy_loop, "torch": torch_loop, "jax": jax_loop, "mxnet": mxnet_loop}


def main() -> None:
    """``python benchmarks/idiomatic.py [--backends ...] [--specs ...] [--repeats N]``: only this table
    (benchmarks/run.py's "optimizers and the MLP" cases, the same measurement), one fresh process per
    backend, printed as paired ratios."""
    import argparse
    import json
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--backends", nargs="+", default=list(LOOPS))
    parser.add_argument("--specs", nargs="+", default=list(SPECS))
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import idiomatic  # the module run.py reads (this script runs as __main__, another module)
        import run

        import wdlib

        for name in [n for n in idiomatic.SPECS if n not in args.specs]:
            del idiomatic.SPECS[name]
        res, checks = run.optimizer_cases(args.worker, wdlib.get_backend(args.worker), args.repeats)
        print(json.dumps({"optimizers": res, "checks": checks}))
        return
    from report import ms, paired

    print("| backend | setting | wdlib eager | idiomatic | eager / idiomatic | eager / compiled "
          "| max rel diff |")
    print("|---|---|---|---|---|---|---|")
    for backend in args.backends:
        cmd = [sys.executable, __file__, "--worker", backend, "--repeats", str(args.repeats),
               "--specs", *args.specs]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        got = json.loads(out.stdout.strip().splitlines()[-1])
        opt = got["optimizers"]
        for spec, diff in got["checks"].items():
            eager, hand = opt[f"{spec}/eager"], opt[f"{spec}/hand"]
            comp = opt.get(f"{spec}/compiled")
            ratio = f"{paired(eager, comp):.2f}" if comp else "-"
            print(f"| {backend} | {spec} | {ms(eager['median'])} | {ms(hand['median'])} | "
                  f"{paired(eager, hand):.3f} | {ratio} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
