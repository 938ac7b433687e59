"""A model or penalty of your own in the store key (wdlib.named): a stored run is found again only for
an object of the same class and settings, in this process or a later one; built-in names keep their
keys; rows stored before the fingerprints stay in the store, readable, and are not taken for a new
object's runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import wdlib
from wdlib.config import _trusted
from wdlib.named import fingerprint
from wdlib.store_format import config_key, config_text_of, result_record

PENALTY_MODULE = '''
class Scaled:
    name = "scaled_elsewhere"

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, ops, w):
        return self.factor * (w * w).sum() / 2

    def grad(self, ops, w):
        return self.factor * w
'''

SWEEP = '''
import sys
sys.path.insert(0, sys.argv[1])
from userpen import Scaled
import wdlib
table = wdlib.sweep([1.0], backends=["numpy"], penalty=Scaled(float(sys.argv[2])), num_epochs=3,
                    store=sys.argv[3], progress=False)
print(table.computed, table.rows[0]["test_loss"])
'''


def _sweep_in_new_process(folder: Path, factor: float, store: Path) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", SWEEP, str(folder), str(factor), str(store)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def test_a_later_process_finds_the_runs_of_the_same_object_only(tmp_path) -> None:
    (tmp_path / "userpen.py").write_text(PENALTY_MODULE)
    store = tmp_path / "runs.sqlite"
    computed, loss = _sweep_in_new_process(tmp_path, 1.0, store)
    assert computed == 1
    assert _sweep_in_new_process(tmp_path, 1.0, store) == (0, loss)  # the same settings: found
    computed, other = _sweep_in_new_process(tmp_path, 10.0, store)  # other settings, same name
    assert computed == 1 and other != loss
    (tmp_path / "userpen.py").write_text(PENALTY_MODULE.replace("/ 2", "/ 2.0"))  # its code edited
    assert _sweep_in_new_process(tmp_path, 1.0, store)[0] == 1
    assert len(wdlib.Store(store)) == 3


class Widened:
    name = "widened"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def init(self, rng, num_inputs):
        return {"w": rng.standard_normal((num_inputs, 1)) * self.scale, "b": np.zeros(1)}

    def apply(self, ops, params, X):
        return ops.dot(X, params["w"]) + params["b"]

    def backward(self, ops, params, X, dout):
        return {"w": ops.dot(X.T, dout), "b": dout.sum(axis=0)}


def test_builtin_names_keep_their_keys_and_user_objects_are_in_the_key() -> None:
    for config in (wdlib.make_config(), wdlib.make_config(model="mlp", penalty="elastic_net")):
        assert config.model_fingerprint == config.penalty_fingerprint == ""
        assert "fingerprint" not in config_text_of(config)
    mine = wdlib.make_config(model=Widened(1.0))
    assert mine.model_fingerprint == fingerprint(Widened(1.0)) != fingerprint(Widened(2.0))
    assert f'"model_fingerprint":"{mine.model_fingerprint}"' in config_text_of(mine)
    with pytest.raises(wdlib.ConfigError, match="it follows from model='widened'") as err:
        wdlib.make_config(model=Widened(1.0), model_fingerprint="0" * 64)
    assert err.value.field == "model_fingerprint"


def test_a_model_changed_in_place_or_replaced_is_not_run_for_an_older_config() -> None:
    model = Widened(1.0)
    config = wdlib.make_config(model=model, num_epochs=2)
    model.scale = 3.0  # the registered object itself changed after the Config was made
    with pytest.raises(wdlib.ConfigError, match="the model registered under that name now"):
        wdlib.train_sequence([config])
    problem = wdlib.make_problem(config.replace())  # made again: the new init, not a remembered one
    assert np.isclose(problem.init["w"].std(), 3 * wdlib.make_problem(config.replace(model=Widened(1.0)))
                      .init["w"].std())


def test_rows_stored_before_fingerprints_stay_and_are_not_reused(tmp_path) -> None:
    """A store written before model_fingerprint existed keyed a user's model by its name alone: such
    a row cannot say which settings ran, so it is kept and listed but not returned for a new sweep."""
    store = wdlib.Store(tmp_path / "runs.sqlite")
    new = wdlib.make_config(model=Widened(1.0), num_epochs=2, on_divergence="record")
    old = _trusted({**new.__dict__, "model_fingerprint": ""})
    old.__dict__.pop("_wdlib_store_key", None)
    store.put(old, result_record(wdlib.train_sequence([new])[0]))
    assert config_key(old) != config_key(new)
    table = wdlib.sweep([0.0], backends=["numpy"], model=Widened(1.0), num_epochs=2, store=store.path)
    assert table.computed == 1
    keys = {row["key"] for row in wdlib.Store(store.path).records()}
    assert keys == {config_key(old), config_key(new)}


def test_objects_without_source_or_pickle_still_get_a_fingerprint() -> None:
    """A class made by exec has no source (its methods' code counts); an object that cannot be
    pickled keeps one token for as long as it lives."""
    source = textwrap.dedent(PENALTY_MODULE)
    one, two = {}, {}
    exec(source, one)
    exec(source.replace("/ 2", "/ 4"), two)
    assert fingerprint(one["Scaled"](1.0)) != fingerprint(two["Scaled"](1.0))
    assert fingerprint(one["Scaled"](1.0)) == fingerprint(one["Scaled"](1.0))
    held = one["Scaled"](1.0)
    held.hook = lambda: None  # a lambda does not pickle
    assert fingerprint(held) == fingerprint(held) != fingerprint(one["Scaled"](1.0))
    run = wdlib.train("numpy", penalty=held, lambd=1.0, num_epochs=2)
    assert run.config.penalty_fingerprint == fingerprint(held)


GUARDED_SCRIPT = PENALTY_MODULE + '''
if __name__ == "__main__":
    import sys
    import wdlib
    table = wdlib.sweep([0.5, 1.0], backends=["numpy"], penalty=Scaled(1.0), num_epochs=3,
                        store=sys.argv[1], workers=2, progress=False)
    print(table.computed)
'''

NOTEBOOK_CELLS = '''
import os, sys, warnings
source = {cell!r}
exec(compile(source, f"/tmp/ipykernel_{{os.getpid()}}/cell1.py", "exec"))  # as a kernel runs a cell
import wdlib
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    table = wdlib.sweep([0.5, 1.0], backends=["numpy"], penalty=Scaled(1.0), num_epochs=3,
                        store=sys.argv[1], workers=2, progress=False)
print(table.computed, [str(w.message) for w in caught if "this notebook" in str(w.message)])
'''


def test_a_class_of_a_guarded_script_runs_in_spawned_workers_and_is_found_again(tmp_path) -> None:
    """Spawned workers import the script as __mp_main__: the fingerprint must not name the module."""
    script, store = tmp_path / "experiment.py", tmp_path / "runs.sqlite"
    script.write_text(GUARDED_SCRIPT)
    runs = [subprocess.run([sys.executable, str(script), str(store)], capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    assert runs == [["2"], ["0"]]


def test_a_notebook_class_sweeps_in_process_and_a_new_kernel_finds_its_runs(tmp_path) -> None:
    """A class of a notebook cell has no source file and cannot be imported by a spawned worker: the
    sweep runs in the kernel and says why; a new kernel (another cell file name) finds the runs."""
    code = NOTEBOOK_CELLS.format(cell=PENALTY_MODULE)
    store = tmp_path / "runs.sqlite"
    outs = [subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert outs[0].startswith('2 ["sweep: running in this process') and "'scaled_elsewhere'" in outs[0]
    assert outs[1].startswith("0 ")


def test_a_class_attribute_changed_after_use_changes_the_fingerprint() -> None:
    class Tuned(Widened):
        name = "tuned"
        gain = 1.0

    before = fingerprint(Tuned())
    Tuned.gain = 2.0
    assert fingerprint(Tuned()) != before


def test_pickling_an_instance_first_leaves_the_fingerprint_alone() -> None:
    """copyreg caches __slotnames__ on a class the first time one of its instances is pickled or
    copied: a worker that has not done so yet must get the same fingerprint."""
    class Fresh(Widened):
        name = "fresh"

    before = fingerprint(Fresh())
    import copy

    copy.copy(Fresh())  # __reduce_ex__, as pickle.dumps of a module-level class
    assert "__slotnames__" in vars(Fresh) and fingerprint(Fresh()) == before
