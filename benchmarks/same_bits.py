"""Before/after check for changes to the fast paths: the same bits on every variant.

``python benchmarks/same_bits.py save OUT.npz`` runs every fast-path variant on every installed
backend (both presets, both dtypes, λ 0 / 3 / decayed bias, both layouts, every strategy, short last
batch, λ sweeps, the large-data path on every thread count, NumPy's compiled kernel, PyTorch without
TorchScript, JAX's two product forms, divergence) and stores each run's losses and parameters;
``python benchmarks/same_bits.py compare BEFORE.npz AFTER.npz`` lists every array that differs in
any bit. Run ``save`` on the code before the change and on the code after (e.g. in a
``git worktree`` of the old commit, with PYTHONPATH pointing at it), in each environment.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

#: Options as named in wdlib.fastpath.FastPathOptions, and where the code before it kept them.
_OLD = {"dual_ratio": ("wdlib.vectorized", "DUAL_RATIO"),
        "gather_bytes": ("wdlib.vectorized", "GATHER_BYTES"),
        "block_bytes": ("wdlib.vectorized", "BLOCK_BYTES"),
        "step_matrix_max_q": ("wdlib.vectorized", "STEP_MATRIX_MAX_Q"),
        "eval_chunk_bytes": ("wdlib.vectorized", "EVAL_CHUNK_BYTES"),
        "kernel_min_bytes": ("wdlib_numpy.fused", "KERNEL_MIN_BYTES"),
        "fused_product_max": ("wdlib_jax.fused", "FUSED_PRODUCT_MAX"),
        "large_threads": ("wdlib.large", "THREADS")}


@contextlib.contextmanager
def options(**changes: Any) -> Iterator[None]:
    """The fast-path options changed for a ``with`` block (``wdlib.fastpath.OPTIONS``)."""
    import importlib

    undo: list[Callable[[], None]] = []
    try:
        from wdlib import fastpath

        before = fastpath.OPTIONS
        fastpath.OPTIONS = before.replace(**changes)
        undo.append(lambda: setattr(fastpath, "OPTIONS", before))
    except ImportError:  # the code before wdlib.fastpath
        for name, value in changes.items():
            module = importlib.import_module(_OLD[name][0])
            old = getattr(module, _OLD[name][1])
            setattr(module, _OLD[name][1], value)
            undo.append(lambda m=module, n=_OLD[name][1], v=old: setattr(m, n, v))
    jax_fused = sys.modules.get("wdlib_jax.fused")
    if jax_fused is not None:  # the product form is chosen when the function is traced
        jax_fused.compiled.cache_clear()
    try:
        yield
    finally:
        for f in reversed(undo):
            f()
        if jax_fused is not None:
            jax_fused.compiled.cache_clear()


@contextlib.contextmanager
def without_torchscript() -> Iterator[None]:
    from wdlib_torch import fused, large

    names = [(m, n) for m in (fused, large) for n in ("scripted_epochs", "scripted_steps",
             "scripted_minibatch") if n in vars(m) and getattr(m, n).__module__ == m.__name__]
    saved = {(m, n): getattr(m, n) for m, n in names}
    for m, n in names:
        setattr(m, n, lambda *a, **k: None)
    try:
        yield
    finally:
        for (m, n), f in saved.items():
            setattr(m, n, f)


LARGE = {"gather_bytes": 0, "dual_ratio": 0, "block_bytes": 2 * 8 * 202}
LAMBDAS = [0.0, 0.5, 3.0, 10.0]


def cases(backend: str) -> Iterator[tuple[str, Callable[[], Any], contextlib.AbstractContextManager[Any]]]:
    """(name, run, context) for every variant on ``backend``."""
    import wdlib

    def train(**kw: Any) -> Callable[[], Any]:
        return lambda: wdlib.train(backend, engine="fused", on_divergence="record", **kw)

    def lambdas(lams: list[float] = LAMBDAS, **kw: Any) -> Callable[[], Any]:
        return lambda: wdlib.train_lambdas(backend, lams, on_divergence="record", **kw)

    settings = {"l0": {"lambd": 0.0}, "l3": {"lambd": 3.0}, "l3b": {"lambd": 3.0, "decay_bias": True}}
    for preset in ("d2l", "gluonbook"):
        for dtype in ("float32", "float64"):
            for sname, s in settings.items():
                yield f"{preset}/{dtype}/{sname}", train(preset=preset, dtype=dtype, seed=1, **s), options()
                yield (f"{preset}/{dtype}/{sname}/minibatch", train(preset=preset, dtype=dtype, seed=1, **s),
                       options(step_matrix_max_q=0))
                yield (f"{preset}/{dtype}/{sname}/primal", train(preset=preset, dtype=dtype, seed=1, **s),
                       options(dual_ratio=0))
            yield f"{preset}/{dtype}/sweep", lambdas(preset=preset, dtype=dtype, seed=2), options()
            yield (f"{preset}/{dtype}/sweep/primal", lambdas(preset=preset, dtype=dtype, seed=2),
                   options(dual_ratio=0))
            yield (f"{preset}/{dtype}/chunked", train(preset=preset, dtype=dtype, lambd=3.0),
                   options(eval_chunk_bytes=3 * 8 * (202 + 20 + 100)))
    short = {"n_train": 23, "batch_size": 5, "num_epochs": 30, "lambd": 3.0}
    for dtype in ("float32", "float64"):
        yield f"short/{dtype}", train(dtype=dtype, **short), options()
        yield f"short/{dtype}/minibatch", train(dtype=dtype, **short), options(step_matrix_max_q=0)
        yield f"short/{dtype}/primal", train(dtype=dtype, **short), options(dual_ratio=0)
        yield f"short/{dtype}/sweep", lambdas(dtype=dtype, n_train=23, batch_size=5, num_epochs=30), options()
        kw = {"lambd": 3.0, "dtype": dtype, "num_epochs": 10, "decay_bias": True}
        yield f"large/{dtype}", train(**kw), options(**LARGE, eval_chunk_bytes=3 * 8 * (202 + 20 + 100))
        yield f"large/{dtype}/short", train(dtype=dtype, **short), options(**LARGE)
        yield f"large/{dtype}/sweep", lambdas(dtype=dtype, decay_bias=True, seed=3), options(**LARGE)
        if backend in ("numpy", "torch"):
            yield f"large/{dtype}/1thread", train(**kw), options(**LARGE, large_threads=1)
        if backend == "numpy":
            for n_train, bs in ((20, 5), (23, 11), (40, 40)):
                yield (f"kernel/{dtype}/{n_train}x{bs}", train(n_train=n_train, batch_size=bs, num_epochs=10,
                                                              dtype=dtype, lambd=3.0),
                       options(**LARGE, kernel_min_bytes=0))
        if backend == "jax":
            yield f"jaxdots/{dtype}", lambdas(dtype=dtype, seed=4), options(fused_product_max=0)
    yield "diverge", train(lr=0.5, num_epochs=100, dtype="float64"), options()
    yield "diverge/large", train(lr=0.5, num_epochs=100, dtype="float64"), options(**LARGE)
    yield "diverge/sweep", lambdas([3.0, 3000.0], num_epochs=60, dtype="float64"), options()
    if backend == "numpy":
        yield ("diverge/kernel", train(lr=0.5, num_epochs=100, dtype="float64"),
               options(**LARGE, kernel_min_bytes=0))
    if backend == "torch":
        for name, ctx in (("", {}), ("/minibatch", {"step_matrix_max_q": 0}), ("/large", LARGE)):
            @contextlib.contextmanager
            def both(ctx: dict = ctx) -> Iterator[None]:
                with options(**ctx), without_torchscript():
                    yield
            yield f"noscript{name}", train(lambd=3.0, dtype="float64", decay_bias=True), both()


def arrays(result: Any) -> dict[str, np.ndarray]:
    runs = result if isinstance(result, list) else [result]
    out = {}
    for i, run in enumerate(runs):
        out[f"{i}/train"] = run.train_loss
        out[f"{i}/test"] = run.test_loss
        for k, v in run.params.items():
            out[f"{i}/{k}"] = v
        out[f"{i}/diverged"] = np.array(run.meta.get("diverged_at_epoch") or -1)
    return out


def save(path: str) -> None:
    import wdlib

    store: dict[str, np.ndarray] = {}
    for backend in ("numpy", "torch", "jax", "mxnet"):
        if backend not in wdlib.installed_backends():
            continue
        for name, run, ctx in cases(backend):
            with ctx:
                for k, v in arrays(run()).items():
                    store[f"{backend}/{name}/{k}"] = v
        print(f"{backend}: done", file=sys.stderr)
    np.savez(path, **store)
    print(f"{len(store)} arrays -> {path}")


def compare(before: str, after: str) -> int:
    a, b = np.load(before), np.load(after)
    diff = [k for k in a.files if k not in b.files or a[k].dtype != b[k].dtype or a[k].shape != b[k].shape
            or a[k].tobytes() != b[k].tobytes()]
    missing = sorted(set(b.files) - set(a.files))
    for k in diff:
        if k in b.files and a[k].shape == b[k].shape:
            with np.errstate(all="ignore"):
                rel = np.nanmax(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), 1e-300)) if a[k].size else 0
            print(f"differs: {k}  (max rel {rel:.3g})")
        else:
            print(f"differs: {k}  (missing or another shape)")
    for k in missing:
        print(f"new: {k}")
    print(f"{len(a.files) - len(diff)} of {len(a.files)} arrays bitwise equal; {len(missing)} new")
    return 1 if diff else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["save"]:
        save(sys.argv[2])
    elif sys.argv[1:2] == ["compare"]:
        raise SystemExit(compare(sys.argv[2], sys.argv[3]))
    else:
        raise SystemExit(__doc__)
