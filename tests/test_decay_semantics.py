"""Every spelling of wdlib.semantics.SPELLINGS against the core chain it claims to equal, generated from
the same definitions as the table (wdlib.decay_semantics), plus the non-equivalences, measured.

Runs: float64, 20 epochs of 5 minibatches of 4 (100 steps), linear model and a (8,) MLP. The
hyperparameters are exactly representable in float32 (lr 2^-8 or 2^-7, wd 0.5, momentum and b1 0.875,
b2 1 - 2^-10, eps 2^-40, 1/batch_size 1/4), because MXNet's operators take them as float32 attributes:
then only rounding order separates native and core, measured <= 3e-15, so rtol 1e-12. MXNet's Adam
rounds lr * sqrt(1 - b2^t) / (1 - b1^t) to float32 every step (<= 6e-8 relative per step; measured
8e-8 on the MLP's parameters), so 1e-6 there. eps = 2^-40 makes MXNet's eps placement (before the bias
correction) negligible; test_mxnet_adam_eps_placement measures it at the default eps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import INSTALLED

import wdlib
from wdlib.semantics import BY_KEY, SPELLINGS, Spelling, convert, core_config, decay_semantics

WD = {"coupled": 0.5, "decoupled": 0.5, "independent": 2**-9}
MODELS = [{"model": "linear"}, {"model": "mlp", "hidden": (8,)}]


def _args(s: Spelling) -> dict[str, Any]:
    if s.optimizer == "momentum":
        damp = {} if "dampening" in s.unsupported or s.nesterov else {"dampening": 0.5}
        return {"beta": 0.875, "nesterov": s.nesterov, **damp}
    if s.optimizer == "adam":
        return {"b1": 0.875, "b2": 1 - 2**-10, "eps": 2**-40}
    return {}


def native_and_core(s: Spelling, wd: float | None = None, **fields: Any) -> tuple[wdlib.Run, wdlib.Run]:
    """The concise run of spelling ``s`` and the core chain's run (semantics.core_config) on its data."""
    common = {"optimizer_args": _args(s), "lr": 2**-7 if s.optimizer == "adam" else 2**-8,
              "batch_size": 4, "num_epochs": 20, "dtype": "float64", "engine": "eager", **fields}
    wd = WD[s.decay] if wd is None else wd
    native = wdlib.train(s.backend, mode="concise", optimizer=s.optimizer, decay=s.decay if wd else "coupled",
                         wd=wd, **common)
    core = core_config(native.config, wdlib.backend_class(s.backend).concise_loss_scale)
    return native, wdlib.fit(s.backend, native.problem, core)


def gap(a: wdlib.Run, b: wdlib.Run) -> float:
    """Largest difference of the final parameters, relative to each parameter's largest entry."""
    return max(float(np.abs(a.params[k] - b.params[k]).max() / np.abs(b.params[k]).max()) for k in b.params)


EQUAL = [s for s in SPELLINGS
         if s.backend in INSTALLED and s.rtol and not s.variant_of and s.optimizer != "any"]


@pytest.mark.parametrize("fields", MODELS, ids=lambda f: f["model"])
@pytest.mark.parametrize("s", EQUAL, ids=lambda s: s.key)
def test_native_equals_its_core_chain(s: Spelling, fields: dict) -> None:
    native, core = native_and_core(s, **fields)
    assert native.engine == core.engine == "eager"
    assert gap(native, core) <= s.rtol
    np.testing.assert_allclose(native.test_loss, core.test_loss, rtol=s.rtol)
    if fields["model"] == "linear":  # the decay acts
        assert native.w_norm < 0.99 * native_and_core(s, wd=0.0, **fields)[0].w_norm


def test_coupled_and_decoupled_adam_differ(backend: str) -> None:
    """Adam + L2 (coupled) and AdamW (decoupled) with the same λ: different updates, > 10% apart in w."""
    coupled, decoupled = (next(s for s in EQUAL if s.backend == backend and s.optimizer == "adam"
                               and s.decay == d) for d in ("coupled", "decoupled"))
    a, b = native_and_core(coupled)[0], native_and_core(decoupled)[0]
    assert gap(a, b) > 0.1


@pytest.mark.skipif("mxnet" not in INSTALLED, reason="MXNet is not installed in this environment")
def test_mxnet_nag_differs_from_nesterov_by_its_decay_term() -> None:
    """gluon.nag is the core Nesterov chain for wd = 0 and not with decay (its table row says so)."""
    s = BY_KEY["gluon.nag"]
    assert s.rtol is None
    assert gap(*native_and_core(s, wd=0.0)) < 1e-12
    assert gap(*native_and_core(s)) > 1e-3  # measured 2.3e-2


@pytest.mark.skipif("mxnet" not in INSTALLED, reason="MXNet is not installed in this environment")
def test_mxnet_adam_eps_placement() -> None:
    """At the default eps = 1e-8 MXNet's eps (before the bias correction) is visible, yet tiny."""
    s = BY_KEY["gluon.adam"]
    native, core = native_and_core(s, optimizer_args={"b1": 0.875, "b2": 1 - 2**-10, "eps": 1e-8})
    assert 1e-12 < gap(native, core) < 1e-5


@pytest.mark.skipif("torch" not in INSTALLED, reason="PyTorch is not installed in this environment")
def test_torch_adam_decoupled_flag_is_adamw_bit_for_bit() -> None:
    import importlib

    import torch

    wdlib.get_backend("torch")
    book = importlib.import_module("wdlib_torch.book")

    base = wdlib.make_config(backend="torch", mode="concise", optimizer="adam", decay="decoupled", wd=0.5,
                             lr=0.01, dtype="float64", num_epochs=3)
    problem = wdlib.make_problem(base)
    params = {k: torch.tensor(v) for k, v in problem.init.items()}
    X, y = torch.tensor(problem.X_train), torch.tensor(problem.y_train)
    steps = [book.concise_step(base, params, spelling=k) for k in
             ("torch.AdamW", BY_KEY["torch.Adam(decoupled_weight_decay=True)"].key)]
    for _ in range(10):
        out = [step(None, X, y) for step in steps]
    assert all(torch.equal(out[0][k], out[1][k]) for k in out[0])
    assert not torch.equal(out[0]["w"], params["w"])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_loss_penalty_is_coupled_decay(optimizer: str) -> None:
    """wdlib.lambd (λ ||w||^2 / 2 in the loss) = coupled wd = λ, for every optimizer."""
    common = {"optimizer": optimizer, "num_epochs": 20, "dtype": "float64", "engine": "eager",
              "lr": 0.01 if optimizer == "adam" else 0.003}
    penalty = wdlib.train("numpy", lambd=3.0, **common)
    decay = wdlib.train("numpy", wd=convert(3.0, from_="wdlib.lambd", to="numpy.sgd.coupled"), **common)
    assert gap(penalty, decay) < BY_KEY["wdlib.lambd"].rtol


class KerasL2:
    """Keras' L2(l2): l2 * ||w||^2, no 1/2."""

    name = "keras_l2"

    def __call__(self, ops: Any, w: Any) -> Any:
        return (w**2).sum()

    def grad(self, ops: Any, w: Any) -> Any:
        return 2 * w


def test_keras_l2_is_half_lambda() -> None:
    l2 = convert(3.0, from_="torch.SGD", to="keras.L2")
    assert l2 == 1.5
    common = {"num_epochs": 20, "dtype": "float64", "engine": "eager"}
    keras = wdlib.train("numpy", lambd=l2, penalty=KerasL2(), **common)
    ours = wdlib.train("numpy", lambd=3.0, **common)
    assert gap(keras, ours) < BY_KEY["keras.L2"].rtol


def test_conversions() -> None:
    assert convert(3, from_="torch.SGD", to="optax.sgd") == 3 == convert(3, from_="torch.SGD", to="gluon.sgd")
    assert convert(0.1, from_="torch.AdamW", to="optax.adamw") == 0.1
    assert convert(0.1, from_="torch.AdamW", to="mxnet.adamw_update", lr=0.01) == pytest.approx(1e-3)
    assert convert(1e-3, from_="mxnet.adamw_update", to="torch.AdamW", lr=0.01) == pytest.approx(0.1)
    assert convert(3, from_="torch.SGD", to="numpy.sgd.decoupled") == 3  # plain SGD: one update
    with pytest.raises(wdlib.ConfigError, match=r"^to="):
        convert(0.1, from_="torch.Adam", to="torch.AdamW")
    with pytest.raises(wdlib.ConfigError, match=r"^to="):
        convert(0.1, from_="gluon.sgd(momentum)", to="numpy.momentum.decoupled")
    with pytest.raises(wdlib.ConfigError, match=r"^lr="):
        convert(0.1, from_="torch.AdamW", to="mxnet.adamw_update")
    with pytest.raises(wdlib.ConfigError, match=r"^from_="):
        convert(0.1, from_="torch.Adamw", to="optax.adamw")


def test_table_is_generated_from_the_spellings() -> None:
    table = decay_semantics()
    assert [row["key"] for row in table] == [s.key for s in SPELLINGS]
    rows = {row["key"]: row for row in table}
    assert "keras.L2 x0.5" in rows["torch.SGD"]["same_as"].split("; ")
    same = rows["optax.adamw"]["same_as"].split("; ")
    assert "torch.AdamW x1" in same and "torch.Adam x1" not in same and "gluon.adam x1" not in same
    assert rows["gluon.nag"]["equal"] == "not compared" and rows["gluon.nag"]["same_as"] == ""
    assert "gluon.nag" not in rows["torch.SGD(nesterov)"]["same_as"]
    assert "optax.sgd(nesterov) x1" in rows["torch.SGD(nesterov)"]["same_as"].split("; ")
    assert rows["torch.AdamW"]["default"] == 0.01 and rows["optax.adamw"]["default"] == 1e-4
    assert "decoupled_decay(wd, lr, lr_scaled=False)" in rows["mxnet.adamw_update"]["core_chain"]
    assert "torch.AdamW" in str(table)


@pytest.mark.parametrize(("fields", "name"), [
    ({"backend": "torch", "optimizer": "momentum", "decay": "decoupled"}, "decay"),
    ({"backend": "jax", "optimizer": "adam", "decay": "independent"}, "decay"),
    ({"backend": "jax", "optimizer": "momentum", "optimizer_args": {"dampening": 0.5}},
     "optimizer_args['dampening']"),
])
def test_concise_refuses_what_the_framework_cannot_spell(fields: dict, name: str) -> None:
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.make_config(mode="concise", wd=1.0, **fields)
    assert err.value.field == name


def test_heatmaps_figure(tmp_path: Any) -> None:
    from wdlib.heatmap import decay_heatmaps, grid

    rows = [{"optimizer": "adam", "decay": d, "lr": lr, "wd": wd, "lambd": 0.0, "diverged": lr * wd > 1,
             "final_test_loss": abs(np.log10(lr * wd)) + (d == "coupled")}
            for d in ("coupled", "decoupled") for lr in (0.01, 0.1) for wd in (1.0, 10.0, 100.0)]
    lrs, lams, m = grid(rows)[("adam", "coupled")]
    assert lrs == [0.01, 0.1] and lams == [1.0, 10.0, 100.0] and np.isnan(m[1, 2]) and m[0, 1] == 2.0
    fig = decay_heatmaps(rows)
    assert len(fig.axes) == 3 and not list(tmp_path.iterdir())  # 2 panels + colorbar, nothing written
    decay_heatmaps(rows, tmp_path / "grid.svg")
    assert (tmp_path / "grid.svg").read_text().lstrip().startswith("<?xml")
    assert fig._repr_png_().startswith(b"\x89PNG")  # shows inline in a notebook, without pyplot
    with pytest.raises(wdlib.ConfigError, match="path="):  # checked before drawing: an unknown suffix
        decay_heatmaps(rows, tmp_path / "grid.bmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.svg"]


def test_convert_checks_its_value_as_a_config_checks_wd() -> None:
    for bad in ("3", -3, float("nan")):
        with pytest.raises(wdlib.ConfigError) as err:
            wdlib.convert(bad, from_="torch.SGD", to="keras.L2")
        assert err.value.field == "wd"


def test_convert_refuses_a_spelling_that_is_not_the_core_update() -> None:
    """gluon.nag leaves wd out of its look-ahead: no value of torch's Nesterov wd is its update (but wd=0)."""
    for kwargs in ({"from_": "gluon.nag", "to": "torch.SGD(nesterov)"},
                   {"from_": "optax.sgd(nesterov)", "to": "gluon.nag"}):
        with pytest.raises(wdlib.ConfigError, match="nag_mom_update leaves wd"):
            wdlib.convert(3, **kwargs)
        assert wdlib.convert(0, **kwargs) == 0
    assert wdlib.convert(3, from_="gluon.nag", to="gluon.nag") == 3


def test_table_names_each_spellings_argument_and_its_equal_momenta() -> None:
    rows = {row["key"]: row for row in wdlib.decay_semantics().rows}
    assert "add_decayed_weights(lambd)" in rows["wdlib.lambd"]["core_chain"]
    assert "add_decayed_weights(2 * l2)" in rows["keras.L2"]["core_chain"]
    same = rows["torch.SGD(nesterov)"]["same_as"].split("; ")
    assert "optax.sgd(nesterov) x1" in same and "wdlib.lambd x1" in same and "keras.L2 x0.5" in same
    assert not any(s.startswith(("optax.sgd(momentum)", "gluon")) for s in same)
