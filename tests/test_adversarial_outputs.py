"""Output targets refused before any work (issue 16), table-driven over the API and the CLI.

Every bad target (suffix, folder, permission, name length, device, link loop, ...) must be refused
with the exact error class (the CLI: exit 2 and one line on stderr) before anything trains or is
drawn, and leave every file already there as it was (bytes and modes, the store included).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from output_helpers import ReadOnly, count_training, snapshot

import wdlib
from wdlib.cli import main
from wdlib.errors import ConfigError
from wdlib.outputs import OutputError, check_output


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run, one comparison and one stored sweep, trained once for every case."""
    store = tmp_path_factory.mktemp("store") / "runs.sqlite"
    return {"run": wdlib.train("numpy", num_epochs=3),
            "comparison": wdlib.compare(["numpy"], lambd=[0], num_epochs=3),
            "sweep": wdlib.sweep([0, 3], [0], ["numpy"], num_epochs=3, store=store,
                                 executor=cf.ThreadPoolExecutor(1)),
            "store": store}


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Any:
    ro = ReadOnly(monkeypatch)
    yield ro
    ro.restore()


def _file(path: Path, text: str = "kept") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _link(path: Path, to: str) -> Path:
    os.symlink(to, path)
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _loop(t: Path, suffix: str) -> Path:
    os.symlink(t / f"b{suffix}", t / f"a{suffix}")
    os.symlink(t / f"a{suffix}", t / f"b{suffix}")
    return t / f"a{suffix}"


def _ro_folder(t: Path, ro: ReadOnly, name: str) -> Path:
    folder = t / "ro"
    folder.mkdir()
    _file(folder / "other.txt")
    ro(folder)
    return folder / name


def _ro_file(t: Path, ro: ReadOnly, name: str) -> Path:
    return ro(_file(t / name, "old content"))


#: Targets wrong for any file: (id, make(tmp, read_only, suffix) -> the target, what the error says).
ANY_FILE: list[tuple[str, Callable[[Path, ReadOnly, str], Any], str]] = [
    ("folder", lambda t, ro, s: (t / f"d{s}").mkdir() or t / f"d{s}", "a folder, not a file"),
    ("file-in-the-way", lambda t, ro, s: _file(t / "f") / f"x{s}", "is a file, not a folder"),
    ("file-deeper", lambda t, ro, s: _file(t / "f") / "a" / "b" / f"x{s}", "is a file, not a folder"),
    ("name-too-long", lambda t, ro, s: t / ("n" * 300 + s), "bytes long, more than the 255"),
    ("utf8-name-too-long", lambda t, ro, s: t / ("é" * 130 + s), "is 26"),  # 130 chars, 260+ bytes
    ("folder-name-too-long", lambda t, ro, s: t / ("d" * 256) / f"x{s}", "bytes long"),
    ("path-too-long", lambda t, ro, s: t.joinpath(*["p" * 200] * 25, f"x{s}"), "the path is"),
    ("device", lambda t, ro, s: _link(t / f"n{s}", os.devnull), "not a regular file"),
    ("fifo", lambda t, ro, s: _fifo(t / f"p{s}"), "not a regular file"),
    ("link-loop", lambda t, ro, s: _loop(t, s), "a symbolic link loop"),
    ("empty", lambda t, ro, s: "", "an empty file name"),
    ("blank", lambda t, ro, s: "  ", "an empty file name"),
    ("nul", lambda t, ro, s: f"{t}/x\0{s}", "NUL character"),
    ("temp-name", lambda t, ro, s: t / f".x{s}.wdlib-tmp-1-ab{s}", "marks wdlib's temporary files"),
    ("read-only-folder", lambda t, ro, s: _ro_folder(t, ro, f"x{s}"), "is not writable"),
    ("read-only-folder-missing-sub", lambda t, ro, s: _ro_folder(t, ro, f"new/x{s}"),
     "the folder it is created in"),
    ("read-only-file", lambda t, ro, s: _ro_file(t, ro, f"old{s}"), "an existing file that is read-only"),
]
#: Targets wrong for a figure only.
FIGURE_ONLY = [
    ("txt", lambda t, ro, s: t / "x.txt", "not a file name ending in .png, .svg, .pdf"),
    ("bmp", lambda t, ro, s: t / "x.bmp", "not a file name ending in .png"),
    ("no-suffix", lambda t, ro, s: t / "figure", "not a file name ending in"),
    ("csv", lambda t, ro, s: t / "x.csv", "not a file name ending in"),
]


def _figure_writers(made: dict[str, Any]) -> dict[str, Callable[[Any], Any]]:
    return {"plot": lambda p: wdlib.plot(made["run"], p), "run.plot": lambda p: made["run"].plot(p),
            "compare.plot": lambda p: made["comparison"].plot(p),
            "sweep.plot": lambda p: made["sweep"].plot(p)}


def _table_writers(made: dict[str, Any]) -> dict[str, Callable[[Any], Any]]:
    return {"to_csv": lambda p: made["comparison"].to_csv(p), "to_json": lambda p: made["sweep"].to_json(p)}


API = ([(w, *case, ".png") for w in ("plot", "run.plot", "compare.plot", "sweep.plot")
        for case in ANY_FILE + FIGURE_ONLY]
       + [(w, *case, ".csv") for w in ("to_csv", "to_json") for case in ANY_FILE])


@pytest.mark.parametrize(("writer", "case", "make", "says", "suffix"), API,
                         ids=[f"{a[0]}-{a[1]}" for a in API])
def test_api_refuses_a_bad_target_before_drawing(
        made: dict[str, Any], tmp_path: Path, read_only: ReadOnly, monkeypatch: pytest.MonkeyPatch,
        writer: str, case: str, make: Callable, says: str, suffix: str) -> None:
    target = make(tmp_path, read_only, suffix)
    before = snapshot(tmp_path)
    drawn: list[str] = []
    for cls in (type(made["comparison"]), type(made["sweep"])):
        real = cls.figure
        monkeypatch.setattr(cls, "figure", lambda self, ax=None, _r=real: drawn.append("x") or _r(self, ax))
    write = {**_figure_writers(made), **_table_writers(made)}[writer]
    with pytest.raises(OutputError) as err:
        write(target)
    message = str(err.value)
    assert type(err.value) is OutputError and isinstance(err.value, ConfigError)
    assert message.startswith("path=") and says in message and "\n" not in message, message
    assert drawn == [] and snapshot(tmp_path) == before


#: Values that are not paths at all: a ConfigError naming ``path`` (figures take file objects too).
NOT_PATHS = [(w, v) for w in ("plot", "compare.plot", "sweep.plot") for v in (42, b"x.png", 1.5, ["x.png"])]


@pytest.mark.parametrize(("writer", "value"), NOT_PATHS)
def test_api_refuses_values_that_are_not_paths(made: dict[str, Any], writer: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^path=.*binary file object") as err:
        _figure_writers(made)[writer](value)
    assert type(err.value) is ConfigError


@pytest.mark.parametrize(("fmt", "ok"), [("bmp", False), ("", False), (3, False), ("PNG", True),
                                         (".svg", True), ("jpg", True), ("eps", True), ("tiff", True)])
def test_plot_format_is_one_matplotlib_writes(made: dict[str, Any], fmt: Any, ok: bool) -> None:
    import io

    buffer = io.BytesIO()
    if ok:
        wdlib.plot(made["run"], buffer, format=fmt)
        assert len(buffer.getvalue()) > 100
    else:
        with pytest.raises(OutputError, match=r"^format=.*not a figure format; use one of 'png', 'svg'"):
            wdlib.plot(made["run"], buffer, format=fmt)
        assert buffer.getvalue() == b""


@pytest.mark.parametrize("suffix", [".jpg", ".eps", ".tif", ".webp", ".svgz", ".PNG"])
def test_every_matplotlib_format_is_written(made: dict[str, Any], tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"figure{suffix}"
    wdlib.plot(made["run"], path)
    assert path.stat().st_size > 100 and [p.name for p in tmp_path.iterdir()] == [path.name]


REPRODUCE: list[tuple[str, Callable[[Path, ReadOnly], dict[str, Any]], type, str]] = [
    ("out-is-a-file", lambda t, ro: {"out": _file(t / "figures")}, OutputError, "an existing file, not a"),
    ("out-under-a-file", lambda t, ro: {"out": _file(t / "f") / "figures"}, OutputError, "is a file"),
    ("out-too-long", lambda t, ro: {"out": t / ("o" * 256)}, OutputError, "bytes long"),
    ("out-read-only", lambda t, ro: {"out": ro((t / "ro").mkdir() or t / "ro")}, OutputError, "not writable"),
    ("out-inside-read-only", lambda t, ro: {"out": ro((t / "ro").mkdir() or t / "ro") / "sub"},
     OutputError, "not writable"),
    ("out-device", lambda t, ro: {"out": os.devnull}, OutputError, "an existing file, not a folder"),
    ("out-empty", lambda t, ro: {"out": ""}, OutputError, "an empty file name"),
    ("figure-is-a-folder", lambda t, ro: {"out": t, "formats": "png"} if (t / "d2l-scratch-0.png").mkdir()
     is None else {}, OutputError, "a folder, not a file"),
    ("figure-read-only", lambda t, ro: {"out": t, "formats": "svg"} if ro(_file(t / "d2l-scratch-3.svg"))
     else {}, OutputError, "read-only"),
    ("formats-bmp", lambda t, ro: {"out": t / "o", "formats": "bmp"}, OutputError, "formats='bmp'"),
    ("formats-one-bad", lambda t, ro: {"out": t / "o", "formats": ("png", "docx")}, OutputError, "'docx'"),
    ("formats-empty", lambda t, ro: {"out": t / "o", "formats": ()}, ConfigError, "at least one"),
    ("formats-number", lambda t, ro: {"out": t / "o", "formats": 3}, ConfigError, "formats=3"),
    ("formats-letters", lambda t, ro: {"out": t / "o", "formats": ["p", "n", "g"]}, OutputError, "'p'"),
]


@pytest.mark.parametrize(("case", "make", "error", "says"), REPRODUCE, ids=[r[0] for r in REPRODUCE])
def test_reproduce_refuses_a_bad_out_before_training(
        tmp_path: Path, read_only: ReadOnly, monkeypatch: pytest.MonkeyPatch,
        case: str, make: Callable, error: type, says: str) -> None:
    kwargs = make(tmp_path, read_only)
    before, trained = snapshot(tmp_path), count_training(monkeypatch)
    with pytest.raises(error) as err:
        wdlib.reproduce("d2l", num_epochs=2, **kwargs)
    assert type(err.value) is error and says in str(err.value) and "\n" not in str(err.value)
    assert trained == [] and snapshot(tmp_path) == before


def test_a_str_format_is_one_format_and_a_figure_is_replaced_in_place(tmp_path: Path) -> None:
    old = _file(tmp_path / "d2l-scratch-0.png", "old")
    old.chmod(0o600)
    runs = wdlib.reproduce("d2l", tmp_path, num_epochs=5, formats="png")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"d2l-{name.split(',')[0]}-{name.split('=')[1]}.png" for name in runs)
    assert old.read_bytes().startswith(b"\x89PNG") and (old.stat().st_mode & 0o777) == 0o600


# --- the CLI -------------------------------------------------------------------------------------

#: Each command and option that writes a file, with the suffix its cases use.
CLI_OUTPUTS = [
    (["train", "--plot"], ".png"), (["train", "--json"], ".json"),
    (["compare", "--backends", "numpy", "--plot"], ".png"),
    (["compare", "--backends", "numpy", "--csv"], ".csv"),
    (["compare", "--backends", "numpy", "--json"], ".json"),
    (["sweep", "--lambd", "1", "--backends", "numpy", "--plot"], ".png"),
    (["sweep", "--lambd", "1", "--backends", "numpy", "--export"], ".csv"),
    (["sweep", "--export"], ".json"), (["decay-table", "--json"], ".json"),
]
CLI_CASES = {"folder", "file-in-the-way", "name-too-long", "path-too-long", "device", "link-loop",
             "empty", "read-only-folder", "read-only-file"}
CLI = [(argv, suffix, *case) for argv, suffix in CLI_OUTPUTS for case in ANY_FILE if case[0] in CLI_CASES]
CLI += [(["train", "--plot"], "", "bmp", lambda t, ro, s: t / "x.bmp", "ending in .png"),
        (["train", "--json"], "", "txt", lambda t, ro, s: t / "x.txt", "ending in .json"),
        (["sweep", "--export"], "", "sqlite", lambda t, ro, s: t / "x.sqlite", "ending in .csv or .json"),
        (["compare", "--csv"], "", "json-as-csv", lambda t, ro, s: t / "x.json", "ending in .csv"),
        (["reproduce", "d2l", "--out"], "", "out-file", lambda t, ro, s: _file(t / "figs"), "not a folder"),
        (["reproduce", "d2l", "--out"], "", "out-long", lambda t, ro, s: t / ("o" * 300), "bytes long"),
        (["compare", "--backends", "numpy", "--data", "{tmp}/d.csv", "--csv"], "", "csv-is-the-data",
         lambda t, ro, s: _file(t / "d.csv", "x,y\n1,2\n3,4\n"), "the same file as --data"),
        (["sweep", "--store", "{tmp}/runs.csv", "--export"], "", "export-is-the-store",
         lambda t, ro, s: t / "runs.csv", "the same file as --store")]


@pytest.mark.parametrize(("argv", "suffix", "case", "make", "says"), CLI,
                         ids=[f"{' '.join(c[0][:1] + c[0][-1:])}-{c[2]}" for c in CLI])
def test_cli_refuses_a_bad_target_with_one_line_and_exit_2(
        made: dict[str, Any], tmp_path: Path, read_only: ReadOnly, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture, argv: list[str], suffix: str, case: str, make: Callable,
        says: str) -> None:
    shutil.copy(made["store"], tmp_path / "runs.sqlite")
    if "runs.csv" in str(argv):
        shutil.copy(made["store"], tmp_path / "runs.csv")
    argv = [a.format(tmp=tmp_path) for a in argv]
    argv += [] if "--store" in argv or argv[0] != "sweep" else ["--store", str(tmp_path / "runs.sqlite")]
    target = os.fspath(make(tmp_path, read_only, suffix))
    option = next(a for a in reversed(argv) if a.startswith("--") and a not in ("--store",))
    argv.insert(argv.index(option) + 1, target)
    before, trained = snapshot(tmp_path), count_training(monkeypatch)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith(f"wdlib: error: {option} ") and err.count("\n") == 1 and says in err, err
    assert trained == [] and snapshot(tmp_path) == before


def test_a_check_leaves_nothing_behind_and_a_missing_folder_is_made_by_the_write(tmp_path: Path) -> None:
    for kind, name in (("figure", "a/b/x.png"), ("json", "c/x.json"), ("folder", "f/sub"), ("file", "t.txt")):
        assert check_output(tmp_path / name, "path", kind) == tmp_path / name
    assert list(tmp_path.iterdir()) == []  # no probe, no folder
    assert check_output(None, "path") is None
    with pytest.raises(ValueError, match="kind='pdf'"):
        check_output(tmp_path / "x.pdf", "path", "pdf")


def test_a_figure_without_matplotlib_is_refused_before_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import wdlib.outputs

    monkeypatch.setattr(wdlib.outputs, "_can_draw", lambda: False)
    trained = count_training(monkeypatch)
    assert main(["train", "--plot", str(tmp_path / "x.png")]) == 2 and trained == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs matplotlib, which is not installed; install it" in err
    assert list(tmp_path.iterdir()) == []


def test_an_output_error_survives_pickling(tmp_path: Path) -> None:
    import pickle

    with pytest.raises(OutputError) as err:
        check_output(tmp_path, "--plot")
    again = pickle.loads(pickle.dumps(err.value))
    assert type(again) is OutputError and str(again) == str(err.value) and again.field == "--plot"
