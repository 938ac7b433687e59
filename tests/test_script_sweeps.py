"""Sweeps from a plain script: without `if __name__ == "__main__":` they run in the calling process
(spawned workers would re-run the script); with the guard, on the process pool. Also the progress bar
(tqdm.auto) and the compile-free ``seconds`` of compare."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wdlib
from wdlib import mainguard, timing

SWEEP = ("table = wdlib.sweep([0, 1, 2, 3], seeds=[0, 1], backends=['numpy'], num_epochs=3, "
         "vectorize=False, workers=2, store='runs.sqlite')")
REPORT = "print(len(table), 'wdlib_numpy.fused' in sys.modules)"  # loaded by training: runs ran here


def run_script(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env=os.environ)


def test_an_unguarded_script_sweeps_in_process_and_says_so_once(tmp_path: Path) -> None:
    done = run_script(tmp_path, f"import sys\nimport wdlib\n{SWEEP}\n{REPORT}\n")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["8", "True"]
    warnings = [line for line in done.stderr.splitlines() if "InProcessWarning" in line]
    assert len(warnings) == 1 and "line 3 is not under `if __name__ == \"__main__\":`" in warnings[0]
    assert "Traceback" not in done.stderr and "bootstrapping" not in done.stderr


def test_an_unguarded_call_through_a_function_is_found_too(tmp_path: Path) -> None:
    source = f"import sys\nimport wdlib\n\ndef main():\n    {SWEEP}\n    {REPORT}\n\nmain()\n"
    done = run_script(tmp_path, source)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["8", "True"] and "line 8 is not under" in done.stderr


@pytest.mark.parametrize("guard", ['if __name__ == "__main__":', "if '__main__' == __name__:"])
def test_a_guarded_script_uses_worker_processes(tmp_path: Path, guard: str) -> None:
    source = f"import sys\nimport wdlib\n\ndef main():\n    {SWEEP}\n    {REPORT}\n\n{guard}\n    main()\n"
    done = run_script(tmp_path, source)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["8", "False"] and "InProcessWarning" not in done.stderr


def test_no_script_means_no_guard_needed() -> None:
    assert mainguard.unguarded_main_line() is None  # pytest: the call is not the main script's code


def test_the_local_executor_is_the_process_pool_unless_unguarded() -> None:
    import concurrent.futures as cf

    executor = mainguard.local_executor(3, 2, None)
    try:
        assert isinstance(executor, cf.ProcessPoolExecutor) and executor._max_workers == 2
    finally:
        executor.shutdown()
    with pytest.warns(mainguard.InProcessWarning, match="line 7 is not under"):
        executor = mainguard.local_executor(3, 2, 7)
    try:
        assert isinstance(executor, cf.ThreadPoolExecutor) and executor._max_workers == 1
    finally:
        executor.shutdown()


def test_progress_is_tqdm_auto_and_silent_without_a_viewer(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    sweep_module = importlib.import_module("wdlib.sweep_exec")  # the sweep's executor and progress bar

    assert sweep_module._interactive() is False  # pytest captures stderr: nobody watches
    import tqdm.auto

    made = []

    class Spy(tqdm.auto.tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Spy)
    with sweep_module.progress_bar(3, True) as advance:
        advance()
    assert made and made[0]["total"] == 3 and made[0]["desc"] == "sweep"
    monkeypatch.setattr(sweep_module, "_interactive", lambda: True)
    with sweep_module.progress_bar(2, None) as advance:
        advance()
    assert len(made) == 2


def test_warm_train_warms_each_configuration_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from wdlib import training

    calls: list[dict[str, object]] = []
    real = training.train

    def counting(*args: object, **kwargs: object) -> wdlib.Run:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train", counting)
    monkeypatch.setattr(timing, "_warmed", set())
    first = timing.warm_train("numpy", "d2l", lambd=3.0, seed=0, num_epochs=4)
    assert len(calls) == timing.WARMUP_RUNS + 1
    timing.warm_train("numpy", "d2l", lambd=1.0, seed=5, num_epochs=4)  # λ and seed are data: no warm-up
    assert len(calls) == timing.WARMUP_RUNS + 2
    timing.warm_train("numpy", "d2l", lambd=1.0, seed=5, num_epochs=5)  # a new shape: warmed again
    assert len(calls) == 2 * timing.WARMUP_RUNS + 3
    assert first.test_loss.tobytes() == real("numpy", lambd=3.0, num_epochs=4).test_loss.tobytes()


@pytest.mark.skipif("jax" not in wdlib.installed_backends(), reason="JAX's compile is the case at hand")
def test_compare_seconds_exclude_jax_compile_time(tmp_path: Path) -> None:
    """In a fresh process JAX's first run compiles its scan (~0.5 s); compare's seconds do not."""
    code = ("import wdlib; print(wdlib.compare(['jax'], lambd=3, num_epochs=40).rows[0]['seconds']); "
            "print(wdlib.train('jax', lambd=3, num_epochs=41).seconds)")  # 41: a new shape, compiled
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]
    warm, cold = map(float, done.stdout.split())
    assert warm < cold / 5, (warm, cold)
