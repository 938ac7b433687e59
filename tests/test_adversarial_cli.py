"""Bad input on the command line, table-driven: each invocation exits 2 with one line on stderr
(``wdlib: error: ...``) naming the option or field, prints nothing on stdout, and changes nothing
already stored. The API's table is tests/test_adversarial_inputs.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from adversarial_helpers import LIMIT, contents, make_store

from wdlib.cli import main

S = "{store}"  # the stored grid (tests/adversarial_helpers.py: STORED)
SWEEP = ["sweep", "--backends", "numpy", "--set", "num_epochs=3", "--store", S]

CASES: list[tuple[str, list[str], str]] = [
    # --- --set of a field that has its own option, or of no field ---------------------------------
    ("train-set-lambd", ["train", "--set", "lambd=3"], "use --lambd 3"),
    ("train-set-backend", ["train", "--set", "backend=torch"], "--backend"),
    ("train-set-preset", ["train", "--set", "preset=gluonbook"], "--preset"),
    ("train-set-dtype", ["train", "--set", "dtype=float64"], "--dtype"),
    ("train-set-lambdas", ["train", "--set", "lambdas=1"], "--lambd"),
    ("train-set-lambds", ["train", "--set", "lambds=1"], "lambds="),
    ("train-set-no-eq", ["train", "--set", "num_epochs"], "FIELD=VALUE"),
    ("train-set-type", ["train", "--set", "num_epochs=ten"], "--num-epochs ten"),
    ("compare-set-dtype", ["compare", "--backends", "numpy", "--set", "dtype=float64"], "--dtype"),
    ("compare-set-preset", ["compare", "--backends", "numpy", "--set", "preset=d2l"], "--preset"),
    ("compare-set-backend", ["compare", "--set", "backend=numpy"], "--backend"),
    # --- sizes -----------------------------------------------------------------------------------
    ("train-num-inputs", ["train", "--set", "num_inputs=1000000000"], "num_inputs=1000000000 is too large"),
    ("train-num-epochs", ["train", "--set", "num_epochs=1000000000"], "--num-epochs 1000000000 is too large"),
    ("train-num-epochs-opt", ["train", "--num-epochs", "1000000000"], "--num-epochs 1000000000 is too large"),
    ("train-n-train", ["train", "--set", "n_train=1000000000"], "n_train=1000000000 is too large"),
    ("train-n-test", ["train", "--set", "n_test=1000000000"], "n_test=1000000000 is too large"),
    ("train-hidden", ["train", "--model", "mlp", "--hidden", "1000000x1000000"],
     "--hidden 1000000x1000000 is too large"),
    ("compare-lambd-range", ["compare", "--lambd", "0:1:1000000000"],
     "--lambd 0:1:1000000000 is too large"),
    ("compare-lambd-ranges", ["compare", "--lambd", "0:1:200000000", "0:1:200000000"], "is too large"),
    ("compare-seeds-range", ["compare", "--seeds", "0-99999999999"], "at most 2147483647"),
    ("compare-seeds-count", ["compare", "--seeds", "0-2000000000"], "--seeds 0-2000000000 is too large"),
    ("compare-kept", ["compare", "--backends", "numpy", "--seeds", "0-9", "--set", "num_inputs=1000000"],
     "runs kept together"),
    # --- values ----------------------------------------------------------------------------------
    ("train-noise", ["train", "--set", "noise=1e308"], "noise=1e+308"),
    ("train-noise-f64", ["train", "--dtype", "float64", "--set", "noise=1e308"], "noise=1e+308"),
    ("train-lr-negative", ["train", "--set", "lr=-1"], "lr=-1.0"),
    ("train-lr-nan", ["train", "--set", "lr=nan"], "lr=nan"),
    ("train-dtype", ["train", "--dtype", "float16"], "--dtype float16"),
    ("train-seed", ["train", "--seed", "-1"], "--seed -1"),
    ("train-on-divergence", ["train", "--set", "on_divergence=maybe"], "on_divergence"),
    ("train-fused-l1", ["train", "--set", "engine=fused", "--penalty", "l1"], "--set engine=fused"),
    ("train-fused-l1-torch", ["train", "--backend", "torch", "--set", "engine=fused", "--penalty", "l1"],
     "--set engine=fused"),
    ("train-backend", ["train", "--backend", "nump"], "did you mean 'numpy'"),
    ("compare-lambd-zero-count", ["compare", "--lambd", "0:1:0"], "count must be >= 1"),
    ("compare-lambd-reversed", ["compare", "--lambd", "1:0:5"], "start <= stop"),
    ("compare-lambd-text", ["compare", "--lambd", "a"], "--lambd a"),
    ("compare-lambd-negative", ["compare", "--lambd", "-1"], "--lambd"),
    ("compare-seeds-reversed", ["compare", "--seeds", "5-1"], "1-5"),
    ("compare-seeds-text", ["compare", "--seeds", "x"], "--seeds x"),
    ("compare-native", ["compare", "--set", "rng=native"], "rng"),
    # --- sweeps against a store that already holds runs ------------------------------------------
    ("sweep-lambd-range", [*SWEEP, "--lambd", "0:1:1000000000"], "is too large"),
    ("sweep-seeds-count", [*SWEEP, "--lambd", "0:1:10", "--seeds", "0-99999999"], "is too large"),
    ("sweep-grid", [*SWEEP, "--lambd", "0:1:60000", "--seeds", "0-60000"], "the sweep grid="),
    ("sweep-native", [*SWEEP, "--lambd", "5", "--set", "rng=native"], "--set rng=native"),
    ("sweep-fused-l1", [*SWEEP, "--lambd", "5", "--set", "engine=fused", "--penalty", "l1"],
     "--set engine=fused"),
    ("sweep-set-lambd", [*SWEEP, "--lambd", "5", "--set", "lambd=2"], "--lambd"),
    ("sweep-set-seed", [*SWEEP, "--lambd", "5", "--set", "seed=2"], "use --seed (train) or --seeds 2"),
    ("sweep-no-vectorize", [*SWEEP, "--lambd", "0,1", "--no-vectorize"], "vectorize=False"),
    ("sweep-workers", [*SWEEP, "--lambd", "5", "--workers", "0"], "--workers 0"),
    ("sweep-run-huge", [*SWEEP, "--lambd", "5", "--set", "num_inputs=1000000000"], "is too large"),
    ("sweep-lr", [*SWEEP, "--lambd", "5", "--set", "lr=0"], "lr=0.0"),
    ("sweep-wd-grid-negative", [*SWEEP, "--wd", "0,-1"], "--wd"),
    # --- misspellings get a suggestion --------------------------------------------------------------
    ("command-misspelt", ["trian"], "did you mean train?"),
    ("opt-momentum", ["train", "--optimizer", "momentum", "--opt", "momentum=0.9"],
     "--opt momentum=0.9 is not valid: expected argument names of --optimizer momentum: beta, nesterov, "
     "dampening; did you mean 'beta'?"),
    ("opt-momentum-of-sgd", ["train", "--opt", "momentum=0.9"],
     "'beta' is an argument of --optimizer momentum"),
    ("opt-lr", ["train", "--optimizer", "adam", "--opt", "lr=0.1"], "did you mean --set lr=...?"),
    ("opt-wd", ["train", "--optimizer", "adam", "--opt", "wd=0.1"], "did you mean --wd?"),
    ("opt-flag-field", ["train", "--opt", "decay_bias=true"], "--opt decay_bias=True is not valid"),
    ("opt-no-value", ["train", "--opt", "beta"], "--opt beta is not valid: expected NAME=VALUE"),
    ("opt-weight-decay", ["train", "--optimizer", "adam", "--opt", "weight_decay=0.1"], "did you mean --wd?"),
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("adversarial-cli") / "runs.sqlite")


def test_the_table_is_named_once() -> None:
    names = [name for name, _, _ in CASES]
    assert len(names) >= 45 and len(set(names)) == len(names)


@pytest.mark.parametrize(("name", "argv", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_invocation_exits_2_with_one_line(
    name: str, argv: list[str], message: str, stored: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WDLIB_MEMORY_LIMIT", LIMIT)
    before = contents(stored)
    code = main([a.replace(S, str(stored)) for a in argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), (name, err)
    assert err.startswith("wdlib: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert contents(stored) == before
