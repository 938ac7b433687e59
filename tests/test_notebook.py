"""The notebook experience, in a real Jupyter kernel (nbclient): examples/weight_decay.ipynb runs
end to end on the installed backends with its figures and tables shown inline, and wdlib's figures
leave the user's pyplot backend and ``plt.show()`` working."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "weight_decay.ipynb"


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel of this interpreter (nbclient raises on a failing cell)."""
    resources = {"metadata": {"path": str(cwd)}}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources=resources).execute()
    return nb


def kinds(cell: nbformat.NotebookNode) -> set[str]:
    return {kind for out in cell.get("outputs", []) for kind in out.get("data", {})}


def test_the_example_notebook_runs_with_everything_inline(tmp_path: Path) -> None:
    nb = execute(nbformat.read(NOTEBOOK, as_version=4), tmp_path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    figures = [cell for cell in code if "image/png" in kinds(cell)]
    assert [cell.source for cell in figures] == [
        "wdlib.plot([plain, decayed])", "table.plot()", "sweep.plot()", "wdlib.plot([adam_l2, adamw])",
        "wdlib.plot(runs)"]
    tables = [cell.source.splitlines()[-1] for cell in code if "text/html" in kinds(cell)]
    assert tables == ["table", "sweep", "mine", "wdlib.decay_semantics()",  # as HTML tables
                      "wdlib.compare(data=(X, y), model=NoBias(), lambd=[0.1])"]
    ridge = next(cell for cell in code if cell.source.startswith("wdlib.ridge"))
    assert ridge.outputs[0]["data"]["text/plain"].startswith("RidgeSolution(lambd=3, ")
    printed = next(cell for cell in code if "run.printed" in cell.source)
    assert "L2 norm of w:" in printed.outputs[0]["text"]
    assert (tmp_path / "runs.sqlite").is_file()
    if importlib.util.find_spec("ipywidgets") is not None:  # tqdm.auto: a widget, not a text bar
        sweep = next(cell for cell in code if cell.source.startswith("sweep = wdlib.sweep"))
        assert "application/vnd.jupyter.widget-view+json" in kinds(sweep)
        widget = "application/vnd.jupyter.widget-view+json"
        bar = next(o for o in sweep.outputs if widget in o.get("data", {}))
        assert "100%" in bar["data"]["text/plain"]  # a saved notebook's text shows the finished bar


def test_wdlib_figures_leave_the_users_pyplot_backend_and_show_alone(tmp_path: Path) -> None:
    cells = [
        "import matplotlib.pyplot as plt\nbefore = plt.get_backend()\nprint(before)",
        "import io, wdlib\nrun = wdlib.train('numpy', lambd=3, num_epochs=5)\nwdlib.plot(run)",
        "wdlib.plot(run, 'run.png'); wdlib.plot(run, io.BytesIO())\n"
        "t = wdlib.compare(['numpy'], lambd=[0, 3], num_epochs=5); t.plot(io.BytesIO()); t",
        "print(plt.get_backend() == before, plt.get_fignums())",
        "plt.plot([1, 2, 3]); plt.show()",  # the user's own figure still shows
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    execute(nb, tmp_path)
    backend = nb.cells[0].outputs[0]["text"].strip()
    assert "inline" in backend  # the kernel's own default, which wdlib must keep
    assert "image/png" in kinds(nb.cells[1])
    assert {"text/html", "text/plain"} <= kinds(nb.cells[2])
    assert nb.cells[3].outputs[0]["text"].split() == ["True", "[]"]  # same backend, no pyplot figure
    assert "image/png" in kinds(nb.cells[4])
    assert (tmp_path / "run.png").is_file()


def test_the_notebook_is_stored_without_outputs() -> None:
    """Outputs belong to a run, not to the repository: the notebook is small and diffs stay readable."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.parametrize("name", ["nbclient", "nbformat", "ipykernel"])
def test_the_notebook_tools_are_dev_dependencies(name: str) -> None:
    import tomllib

    with open(NOTEBOOK.parent.parent / "pyproject.toml", "rb") as f:
        dev = tomllib.load(f)["project"]["optional-dependencies"]["dev"]
    assert any(requirement.startswith(name) for requirement in dev)
