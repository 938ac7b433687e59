"""Native-RNG reproduction: wdlib equals each book's own code, seeded the same, to the last bit.

The oracles are transcriptions of the books' code (tests/book_*.py) run in a subprocess, so their
use of the global random streams cannot interfere with this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wdlib

HERE = Path(__file__).parent
INSTALLED = wdlib.installed_backends()


def run_oracle(module: str, seed: int, **kwargs: object) -> list[dict]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); from {module} import run_book\n"
        f"out = run_book({seed}, **{kwargs!r})\n"
        "plain = lambda v: v.tolist() if hasattr(v, 'tolist') else [float(x) for x in v] if "
        "isinstance(v, list) else v\n"
        "print(json.dumps([{k: plain(v) for k, v in r.items()} for r in out]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_bitwise(run: wdlib.Run, book: dict) -> None:
    assert run.train_loss.tolist() == [float(v) for v in book["train"]]
    assert run.test_loss.tolist() == [float(v) for v in book["test"]]
    assert np.array_equal(run.params["w"], np.asarray(book["w"], dtype=np.float32).reshape(-1, 1))
    assert np.array_equal(run.params["b"], np.asarray(book["b"], dtype=np.float32).reshape(-1))


def need(backend: str) -> None:
    """The reproduction of a book needs its framework; without it, wdlib must say how to install it."""
    if backend not in INSTALLED:
        with pytest.raises(wdlib.BackendNotInstalledError):
            wdlib.train(backend, "gluonbook" if backend == "mxnet" else "d2l", rng="native")
        pytest.skip(f"{backend} is not installed here (checked that wdlib says so)")


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_gluonbook_mxnet_bit_for_bit(seed: int) -> None:
    need("mxnet")
    book = run_oracle("book_gluonbook_mxnet", seed)
    runs = wdlib.reproduce("gluonbook", seed=seed)
    assert list(runs) == ["scratch, λ=0", "scratch, λ=5"]
    for run, expected in zip(runs.values(), book, strict=True):
        assert_bitwise(run, expected)
        assert run.printed == f"L2 norm of w: {np.float32(expected['norm'])!s}"  # print() uses str()


def test_gluonbook_printed_edition_norm() -> None:
    """d2l-zh (2019) ran the gluonbook code for 100 epochs, unseeded (= seed 0), and printed this."""
    need("mxnet")
    runs = wdlib.reproduce("gluonbook", num_epochs=100)
    assert runs["scratch, λ=0"].printed == "L2 norm of w: 11.611941"


def test_single_native_run_equals_first_call_of_the_book() -> None:
    need("mxnet")
    book = run_oracle("book_gluonbook_mxnet", 2, lambds=(5,))
    assert_bitwise(wdlib.train("mxnet", "gluonbook", lambd=5, seed=2, rng="native"), book[0])


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_d2l_torch_bit_for_bit(seed: int) -> None:
    need("torch")
    book = run_oracle("book_d2l_torch", seed)
    runs = wdlib.reproduce("d2l", seed=seed, edition="zh")
    assert list(runs) == ["scratch, λ=0", "scratch, λ=3", "concise, wd=0", "concise, wd=3"]
    labels = ["w的L2范数是："] * 2 + ["w的L2范数："] * 2
    for run, expected, label in zip(runs.values(), book, labels, strict=True):
        assert run.epochs.tolist() == list(range(5, 101, 5))
        assert_bitwise(run, expected)
        assert run.printed == f"{label} {expected['norm']}"


def test_d2l_result_holds_in_the_native_runs() -> None:
    need("torch")
    runs = wdlib.reproduce("d2l", num_epochs=100)
    plain, decayed = runs["scratch, λ=0"], runs["scratch, λ=3"]
    assert plain.test_loss[-1] > 10 * decayed.test_loss[-1] and decayed.w_norm < 1 < 10 < plain.w_norm


def test_reproduce_writes_png_and_svg(tmp_path: Path) -> None:
    book = "d2l" if "torch" in INSTALLED else "gluonbook"
    need("torch" if book == "d2l" else "mxnet")
    runs = wdlib.reproduce(book, tmp_path, num_epochs=10)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 * len(runs)
    for name in files:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") if name.endswith(".png") else b"<svg" in data[:500]


def test_native_needs_a_recipe_and_float32() -> None:
    with pytest.raises(wdlib.ConfigError, match=r"rng.*no native recipe for preset 'gluonbook'"):
        wdlib.train("torch", "gluonbook", rng="native")
    with pytest.raises(wdlib.ConfigError, match=r"rng.*backend 'numpy' has no native recipe"):
        wdlib.train("numpy", rng="native")
    with pytest.raises(wdlib.ConfigError, match=r"dtype.*'float32' with rng='native'"):
        wdlib.train("torch", rng="native", dtype="float64")
    with pytest.raises(wdlib.ConfigError, match="book"):
        wdlib.reproduce("d2l-en")


def test_native_sequence_must_share_the_data() -> None:
    configs = [wdlib.make_config(backend="torch", rng="native"),
               wdlib.make_config(backend="torch", rng="native", seed=1)]
    with pytest.raises(wdlib.ConfigError, match="seed"):
        wdlib.train_sequence(configs)


def test_editions_print_their_own_lines() -> None:
    need("torch")
    zh = wdlib.reproduce("d2l", num_epochs=5, edition="zh")
    en = wdlib.reproduce("d2l", num_epochs=5, edition="en")
    for (name, a), b in zip(zh.items(), en.values(), strict=True):
        norm = a.w_norm_text
        assert b.w_norm_text == norm  # the same runs; only the printed label differs
        assert b.printed == f"L2 norm of w: {norm}"
        assert a.printed == ("w的L2范数是：" if name.startswith("scratch") else "w的L2范数：") + f" {norm}"
        assert wdlib.printed_line(a, "en") == b.printed


@pytest.mark.parametrize(("environ", "edition"), [
    ({}, "en"), ({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "C.UTF-8"}, "en"),
    ({"LANGUAGE": "zh_TW:en", "LANG": "en_US.UTF-8"}, "zh"), ({"LC_ALL": "en_GB", "LANG": "zh_CN"}, "en"),
])
def test_the_default_edition_is_the_locales_language(environ: dict[str, str], edition: str) -> None:
    from wdlib.books import default_edition

    assert default_edition(environ) == edition


def test_bad_editions_and_formats_are_refused_before_training() -> None:
    with pytest.raises(wdlib.ConfigError, match=r"edition='fr'.*'en', 'zh'"):
        wdlib.reproduce("d2l", edition="fr")
    with pytest.raises(wdlib.ConfigError, match=r"formats='bmp'"):
        wdlib.reproduce("d2l", formats=("png", "bmp"))


def test_one_format_may_be_given_as_a_string(tmp_path: Path) -> None:
    book = "d2l" if "torch" in INSTALLED else "gluonbook"
    need("torch" if book == "d2l" else "mxnet")
    runs = wdlib.reproduce(book, tmp_path, num_epochs=5, formats="png")
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".png"] * len(runs)
