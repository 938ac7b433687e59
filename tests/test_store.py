"""The SQLite results store: exact round trip, stable keys, and refusal of files it does not own.

Migration of schema-1 files: tests/test_store_v1.py; locks, read-only files, damage, a full disk:
tests/test_store_faults.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import wdlib
from wdlib.config import _trusted
from wdlib.store import APPLICATION_ID, SCHEMA_VERSION, config_key, result_record
from wdlib.store_format import array_bytes, array_from, config_text, key_of_text, params_bytes, params_from
from wdlib.sweep import sweep_configs


@pytest.fixture(scope="module")
def run() -> wdlib.Run:
    return wdlib.train("numpy", lambd=3, num_epochs=5, seed=4)


def test_round_trip_is_exact_and_put_is_idempotent(tmp_path: Path, run: wdlib.Run) -> None:
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        assert store.put(run.config, result_record(run)) is True
        assert store.put(run.config, result_record(run)) is False  # already stored: kept as is
        assert len(store) == 1 and config_key(run.config) in store
        (row,) = store.records()
    assert list(row["params"]) == ["w", "b"]
    for name, array in [("train_loss", run.train_loss), ("test_loss", run.test_loss),
                        ("w", run.params["w"]), ("b", run.params["b"])]:
        for got in [row[name]] + ([row["params"][name]] if name in "wb" else []):
            assert got.dtype == array.dtype and got.shape == array.shape
            assert got.tobytes() == array.tobytes()
    assert {k: row[k] for k in dataclasses.asdict(run.config)} == dataclasses.asdict(run.config)
    assert row["w_norm"] == run.w_norm and row["final_test_loss"] == run.test_loss[-1]
    assert row["backend_version"] == run.backend_version and row["diverged"] is False
    assert row["key"] == config_key(run.config)


def test_put_many_stores_a_tasks_runs_together_all_or_none(tmp_path: Path) -> None:
    runs = wdlib.train_lambdas("numpy", [0, 1, 2], num_epochs=5)
    pairs = [(r.config, result_record(r)) for r in runs]
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(Exception):  # noqa: B017 - any error: the point is that nothing was stored
            store.put_many([pairs[0], (runs[1].config, {})])
        assert len(store) == 0
        assert store.put_many(pairs[:2]) == 2
        assert store.put_many(pairs) == 1  # the first two were stored already: kept as they are
        assert sorted(r["lambd"] for r in store.records()) == [0.0, 1.0, 2.0]


def test_a_configs_kept_key_is_its_fields_key(tmp_path: Path) -> None:
    """config_key keeps the key on the (frozen) instance: copies, pickles and equal configs agree."""
    import copy
    import pickle

    config = wdlib.make_config(lambd=2.5, seed=3)
    key = config_key(config)
    for other in (copy.copy(config), pickle.loads(pickle.dumps(config)), wdlib.make_config(lambd=2.5, seed=3),
                  config.replace(seed=3)):
        assert config_key(other) == key and other == config
    assert config_key(config.replace(seed=4)) != key


def _fake_mlp_run() -> SimpleNamespace:
    """A Run-like result of a two-layer model (the attributes result_record reads)."""
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(200, 16)), "b1": np.zeros(16), "W2": rng.normal(size=(16, 1)),
              "b2": np.ones(1, dtype=np.float32)}
    norm = float(np.sqrt(sum(np.sum(params[n] ** 2) for n in ("W1", "W2"))))
    return SimpleNamespace(backend_version="numpy 0", engine="eager", seconds=0.5, diverged=False,
                           meta={}, train_loss=np.array([2.0, 1.0]), test_loss=np.array([3.0, 1.5]),
                           params=params, w_norm=norm)


def test_any_named_parameters_round_trip(tmp_path: Path) -> None:
    """The store keeps whatever arrays run.params holds (an MLP's W1, b1, W2, b2), in their order,
    with run.w_norm; such a row has no w or b."""
    run = _fake_mlp_run()
    config = wdlib.make_config(lambd=1)
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        store.put(config, result_record(run))
        (row,) = store.records()
    assert list(row["params"]) == ["W1", "b1", "W2", "b2"] and "w" not in row and "b" not in row
    for name, array in run.params.items():
        got = row["params"][name]
        assert got.dtype == array.dtype and got.shape == array.shape and got.tobytes() == array.tobytes()
    assert row["w_norm"] == run.w_norm
    blob = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT params FROM runs").fetchone()[0]
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:  # a plain .npz, no pickle needed
        assert npz.files == ["W1", "b1", "W2", "b2"]


ARRAYS = [np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.array(3.5), np.zeros((0, 4), np.float32),
          np.arange(5, dtype=">i4"), np.array([True, False]), np.full((3, 1), np.nan, np.float32)]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_arrays_round_trip_exactly_and_damaged_bytes_are_refused(array: np.ndarray) -> None:
    for back in (array_from(array_bytes(array)), params_from(params_bytes({"x": array}))["x"]):
        assert back.dtype == array.dtype and back.shape == array.shape and back.tobytes() == array.tobytes()
        assert back.flags.f_contiguous == array.flags.f_contiguous and back.flags.writeable
    blob = array_bytes(array)
    for damaged in (blob[:-1] if array.size else blob + b"x", b"\x93NUMPY\x01\x00" + blob[8:20], b"", b"npy"):
        with pytest.raises((ValueError, EOFError)):  # decode_row reports either as a damaged row
            array_from(damaged)


def test_params_with_objects_are_refused(tmp_path: Path, run: wdlib.Run) -> None:
    record = {**result_record(run), "params": {"w": np.array([object()])}}
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match="allow_pickle=False"):
            store.put(run.config, record)
        assert len(store) == 0


def test_file_is_a_wal_sqlite_database_with_wdlib_id(tmp_path: Path, run: wdlib.Run) -> None:
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        store.put(run.config, result_record(run))
        assert store.integrity_check() == "ok"
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == str(SCHEMA_VERSION)
    db.close()


def test_key_covers_every_field_and_is_stable_across_processes() -> None:
    config = wdlib.make_config(lambd=3, seed=1)
    keys = {config_key(config)}
    for field, value in [("lambd", 3.5), ("seed", 2), ("dtype", "float64"), ("num_epochs", 7),
                         ("backend", "torch"), ("on_divergence", "record"), ("decay_bias", True)]:
        keys.add(config_key(config.replace(**{field: value})))
    assert len(keys) == 8
    code = ("import wdlib; from wdlib.store import config_key; "
            "print(config_key(wdlib.make_config(lambd=3, seed=1)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == config_key(config)


def test_key_hashes_only_the_fields_that_differ_from_their_defaults() -> None:
    """So a field added to Config with a default changes no stored key, and defaults alone have one."""
    defaults = wdlib.make_config()
    assert config_key(defaults) == hashlib.sha256(b"{}").hexdigest()
    config = wdlib.make_config(lambd=3, seed=1, dtype="float64")
    expected = json.dumps({"dtype": "float64", "lambd": 3.0, "seed": 1}, separators=(",", ":"))
    assert config_key(config) == hashlib.sha256(expected.encode()).hexdigest()
    later = dataclasses.make_dataclass(  # Config with one more field, as a later wdlib may have
        "Config", [("widths", tuple, dataclasses.field(default=()))], bases=(wdlib.Config,), frozen=True)
    assert config_key(later(**dataclasses.asdict(config))) == config_key(config)
    assert config_key(later(**dataclasses.asdict(config), widths=(8, 8))) != config_key(config)
    fields = dataclasses.asdict(config)
    del fields["on_divergence"]  # JSON stored before a field existed: the missing field is its default
    assert key_of_text(config_text(fields)) == config_key(config)


def test_tuple_fields_round_trip_and_rebuild_the_config(tmp_path: Path, run: wdlib.Run) -> None:
    """Tuples (JSON lists in the store) come back as tuples: the row rebuilds its Config, same key."""
    config = wdlib.make_config(model="mlp", hidden=(8, 4), optimizer="adam", optimizer_args={"b1": 0.8},
                               penalize=("W1",), lambd=-0.0)
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        store.put(config, result_record(run))
        (row,) = store.records()
    assert (row["hidden"], row["optimizer_args"], row["penalize"]) == ((8, 4), (("b1", 0.8),), ("W1",))
    rebuilt = wdlib.make_config(**{f: row[f] for f in wdlib.Config.__dataclass_fields__})
    assert rebuilt == config and config_key(rebuilt) == row["key"] == config_key(config)
    stored = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT config FROM runs").fetchone()[0]
    assert json.loads(stored) == {"hidden": [8, 4], "model": "mlp", "optimizer": "adam",
                                  "optimizer_args": [["b1", 0.8]], "penalize": ["W1"]}


@pytest.mark.parametrize(("field", "default"), [("lambd", 0.0), ("true_b", 0.05), ("true_w", 0.01)])
def test_negative_zero_and_zero_are_one_key(field: str, default: float) -> None:
    zero = wdlib.make_config(**{field: 0.0})
    negative = _trusted({**dataclasses.asdict(zero), field: -0.0})  # whether or not Config keeps the sign
    assert math.copysign(1, getattr(negative, field)) == -1
    assert config_key(zero) == config_key(negative)
    assert (config_key(zero) == config_key(wdlib.make_config())) is (default == 0)
    assert len(sweep_configs([0.0, -0.0], backends=["numpy"])) == 1  # one run, not two


def _foreign_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()


def _foreign_app_id(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id=1234")
    db.commit()
    db.close()


def _other_schema(path: Path) -> None:
    wdlib.Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()


@pytest.mark.parametrize(("make", "match"), [
    (lambda p: p.write_bytes(b"this is not a database" * 100), "not a wdlib store"),
    (_foreign_sqlite, "another application's SQLite database"),
    (_foreign_app_id, "application_id is 0x4d2"),
    (_other_schema, "schema version 99.*reads versions 1 and 2"),
])
def test_refuses_files_it_does_not_own_and_leaves_them_untouched(tmp_path: Path, make, match: str) -> None:
    path = tmp_path / "other.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(wdlib.StoreError, match=match) as err:
        wdlib.Store(path)
    assert isinstance(err.value, ValueError) and "new path" in str(err.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize(("path", "match"), [
    ("missing/folder/runs.sqlite", "folder .* does not exist; create it"),
    (".", "is a folder"),
    ("/sys/runs.sqlite", "not writable"),  # root may write anywhere else; sysfs refuses new files
])
def test_unusable_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, match: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(wdlib.StoreError, match=match):
        wdlib.Store(path)
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_empty_file_becomes_a_store(tmp_path: Path, run: wdlib.Run) -> None:
    """An empty file (e.g. from ``touch``) is an empty SQLite database: it is initialized."""
    path = tmp_path / "new.sqlite"
    path.touch()
    with wdlib.Store(path) as store:
        store.put(run.config, result_record(run))
    with wdlib.Store(path) as store:
        assert len(store) == 1


def _open_each(paths: list[str], barrier: Any, errors: Any) -> None:
    """In a spawned process: open every store at the same instant as the other processes."""
    for path in paths:
        barrier.wait()
        try:
            wdlib.Store(path).close()
        except Exception as err:  # reported to the test, which fails on it
            errors.put(repr(err))


def test_many_processes_creating_one_store_at_once(tmp_path: Path) -> None:
    """The creation race: each process must find either nothing (and create the store) or a complete
    store; none may see a half-made one, and SQLite's lock while another switches to WAL is waited out."""
    ctx = multiprocessing.get_context("spawn")
    paths = [str(tmp_path / f"s{i}.sqlite") for i in range(25)]
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_open_each, args=(paths, barrier, errors)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 4
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    for path in paths:
        with wdlib.Store(path) as store:
            assert len(store) == 0 and store.integrity_check() == "ok"
