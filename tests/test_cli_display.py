"""What the command line shows: the settings a run used, --quiet, CLI words in hints, editions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wdlib.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_table_names_the_optimizer_decay_and_model(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["train", "--mode", "concise", "--wd", "3", "--optimizer", "momentum",
                            "--set", "num_epochs=5"], capsys)
    header = out.splitlines()[0].split()
    assert code == 0 and "wd" in header and "decay" in header and "lambd" not in header
    assert "settings: " in out and "mode='concise'" in out and "optimizer='momentum'" in out
    code, out, _ = run_cli(["train", "--model", "mlp", "--hidden", "8", "--set", "num_epochs=5"], capsys)
    assert code == 0 and "model='mlp'" in out and "hidden=(8,)" in out and "lambd" in out.split()
    code, out, _ = run_cli(["train", "--lambd", "3"], capsys)
    assert code == 0 and "settings:" not in out  # the book's own settings: nothing to name


def test_quiet_prints_only_what_was_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "run.json"
    code, out, _ = run_cli(["train", "--quiet", "--json", str(target), "--set", "num_epochs=5"], capsys)
    assert code == 0 and out.splitlines() == [f"json: {target}"]
    assert json.loads(target.read_text())["config"]["num_epochs"] == 5
    code, out, _ = run_cli(["compare", "--quiet", "--backends", "numpy", "--lambd", "0", "3",
                            "--set", "num_epochs=5"], capsys)
    assert code == 0 and out == ""
    store, export = tmp_path / "runs.sqlite", tmp_path / "runs.csv"
    code, out, _ = run_cli(["sweep", "--quiet", "--lambd", "0:3:4", "--backends", "numpy", "--store",
                            str(store), "--export", str(export), "--set", "num_epochs=5"], capsys)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith("4 runs (4 computed")
    assert lines[1] == f"exported: {export}" and len(export.read_text().splitlines()) == 5


def test_divergence_hint_speaks_command_line(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["train", "--set", "lr=5"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "--set lr=0.5" in err and "--set on_divergence=record" in err
    assert "on_divergence='record'" not in err


@pytest.mark.parametrize(("edition", "line"), [("en", "L2 norm of w: "), ("zh", "w的L2范数")])
def test_reproduce_edition(edition: str, line: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["reproduce", "d2l", "--edition", edition, "--epochs", "5"], capsys)
    assert code == 0 and len(out.splitlines()) == 5 and "tests/test_books.py" in out.splitlines()[-1]
    runs = [row for row in out.splitlines() if "loss" in row]
    assert len(runs) == 4 and all(f"printed as the book's code prints it: {line}" in row for row in runs)


def test_a_warning_is_one_line_and_the_users_filters_are_kept(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    import warnings

    import wdlib.training
    from wdlib.store_file import StoreWarning

    real = wdlib.training.train

    def train(*args: object, **kwargs: object) -> object:
        warnings.warn("2 damaged rows skipped\nsee the store", StoreWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(wdlib.training, "train", train)
    before = warnings.showwarning
    code, _, err = run_cli(["train", "--quiet", "--set", "num_epochs=5"], capsys)
    assert code == 0 and err == "wdlib: warning: 2 damaged rows skipped; see the store\n"
    assert warnings.showwarning is before


def test_a_field_given_by_set_and_by_its_option_is_refused(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["train", "--mode", "concise", "--set", "wd=3", "--wd", "1"], capsys)
    assert code == 2 and out == "" and "--wd" in err
    assert err.startswith("wdlib: error: --set wd=3.0 is not valid")


def test_options_are_never_abbreviated(capsys: pytest.CaptureFixture) -> None:
    """--mod must not silently become --model (argparse's default); sweep has --mode of its own."""
    code, _, err = run_cli(["train", "--mod", "mlp"], capsys)
    assert code == 2 and "unrecognized arguments: --mod" in err


def test_python_m_wdlib_sweeps_in_worker_processes(tmp_path: Path) -> None:
    """`python -m wdlib sweep` is guarded: no 'running in this process' fallback, and a concise sweep
    grids wd over --lambd."""
    import subprocess
    import sys

    store = tmp_path / "s.sqlite"
    done = subprocess.run([sys.executable, "-m", "wdlib", "sweep", "--mode", "concise", "--lambd", "0,3",
                           "--backends", "numpy", "--store", str(store), "--set", "num_epochs=5",
                           "--workers", "2", "--no-vectorize", "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("2 runs (2 computed") and "mode='concise'" in done.stdout


def test_train_takes_one_lambda_and_says_where_several_go(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["train", "--lambd", "0,3"], capsys)
    assert code == 2 and "train runs one λ; compare and sweep take several" in err


@pytest.mark.parametrize(("python", "command_line"), [
    ("expected () with model='linear'; use model='mlp'", "expected () with --model linear; use --model mlp"),
    ("hidden=(128, 64) is too large", "--hidden 128x64 is too large"),
    ("lower lr=0.3, or keep it with on_divergence='record'", "lower --set lr=0.3, or keep it with "
     "--set on_divergence=record"),
    ("--lambd='0:10:x' is not valid", "--lambd 0:10:x is not valid"),
    ("use wd=... for weight decay", "use --wd ... for weight decay"),
    ("already --set lr=0.3", "already --set lr=0.3"),
    ("pass data=(X, y) or store='a.db'", "pass data=(X, y) or store='a.db'"),  # no such options here
    ("seed=3 of sweep", "--seeds 3 of sweep"),
])
def test_messages_for_python_callers_are_said_in_command_line_words(python: str, command_line: str) -> None:
    from wdlib.cli_errors import cli_words

    options = {"--model", "--hidden", "--set", "--lambd", "--wd", "--seeds"}
    assert cli_words(python, options) == command_line


def test_decay_table_fits_a_terminal_and_wide_gives_every_column(capsys: pytest.CaptureFixture) -> None:
    from wdlib.semantics import decay_semantics

    rows = decay_semantics().rows
    code, out, _ = run_cli(["decay-table"], capsys)
    assert code == 0 and max(map(len, out.splitlines())) <= 100
    assert out.strip() == str(decay_semantics())  # what print(wdlib.decay_semantics()) shows
    blocks = out.strip().split("\n\n")[:-1]  # the last one is the caption
    assert [b.split()[0] for b in blocks] == [r["key"] for r in rows]
    assert all(f"= {r['core_chain']}" in " ".join(b.split()) for b, r in zip(blocks, rows, strict=True))
    code, out, _ = run_cli(["decay-table", "--wide"], capsys)
    header = out.splitlines()[0].split()
    assert code == 0 and header == list(decay_semantics().columns) and len(out.splitlines()) == len(rows) + 2


@pytest.mark.parametrize(("argv", "hint"), [
    (["train", "--weight-decay", "3"], "did you mean --wd?"),
    (["train", "--lamda", "3"], "did you mean --lambd?"),
    (["train", "--learning-rate", "0.1"], "did you mean --set lr=...?"),
    (["compare", "--epochs", "3"], "did you mean --set num_epochs=...?"),
])
def test_an_unknown_option_is_answered_by_its_command_with_a_hint(
        argv: list[str], hint: str, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and f"unrecognized arguments: {argv[1]} {argv[2]}; {hint}" in err
    assert f"wdlib {argv[0]} --help" in err


def test_train_takes_epochs_as_reproduce_does(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["train", "--epochs", "2"], capsys)
    assert code == 0 and "num_epochs=2" in out
