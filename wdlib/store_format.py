"""What a wdlib store (schema 2) keeps of a run, and how: the key, the config text, the array blobs.

Kept apart from :mod:`wdlib.store` (the SQLite file) so that these pure functions are the whole
definition of a row: the key of a configuration, the bytes of its arrays, and the check that a row
read back is intact.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import Config

SCHEMA_VERSION = 2

#: Columns of a stored run besides its key, configuration, arrays and time of storing, in table order.
RESULT_COLUMNS = (
    "backend_version", "engine_used", "seconds", "diverged", "diverged_at_epoch",
    "final_train_loss", "final_test_loss", "w_norm",
)
#: Columns holding one array each (.npy bytes); ``params`` holds a dict of arrays (.npz bytes).
ARRAY_COLUMNS = ("train_loss", "test_loss")

META_TABLE = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
RUNS_TABLE = """
CREATE TABLE runs (
    key TEXT PRIMARY KEY,          -- sha256 hex of `config`: config_key(config)
    config TEXT NOT NULL,          -- canonical JSON of the Config fields that differ from their defaults
    backend_version TEXT NOT NULL,
    engine_used TEXT NOT NULL,     -- "eager", "fused" or "vectorized": what engine="auto" chose
    seconds REAL NOT NULL,         -- wall time of the training loop
    diverged INTEGER NOT NULL,     -- 0 or 1
    diverged_at_epoch INTEGER,
    final_train_loss REAL,
    final_test_loss REAL,
    w_norm REAL,                   -- run.w_norm: every weight matrix together
    train_loss BLOB NOT NULL,      -- .npy bytes: dtype and shape kept exactly
    test_loss BLOB NOT NULL,
    params BLOB NOT NULL,          -- .npz bytes (no pickle): the named parameter arrays, in order
    stored_at REAL NOT NULL        -- time.time() when the driver committed the row
)"""
COLUMNS = ("key", "config", *RESULT_COLUMNS, *ARRAY_COLUMNS, "params", "stored_at")


class DamagedRow(ValueError):
    """A stored row that does not decode, or whose configuration does not hash to its key."""


# --- keys ----------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python data, one form per value: tuples become lists, NumPy scalars
    Python ones, and -0.0 becomes 0.0 (equal numbers, so one key: issue 16)."""
    kind = type(value)
    if kind is str or kind is bool or kind is int:  # most fields: the fast path
        return value
    if kind is float:
        return value + 0.0
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value) + 0.0  # -0.0 + 0.0 == +0.0
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@functools.cache
def _defaults(cls: type) -> dict[str, Any]:
    """The default of each field of the dataclass ``cls``, as :func:`plain` data (fields without
    one are left out)."""
    found = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            found[f.name] = plain(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            found[f.name] = plain(f.default_factory())
    return found


def _same(a: Any, b: Any) -> bool:
    """Equal plain data of equal types throughout (so True is not 1, and 1 is not 1.0): equal JSON."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


_MISSING = object()


def config_text(fields: Mapping[str, Any], cls: type = Config) -> str:
    """The canonical JSON of the fields whose value differs from the default of that field of ``cls``.

    A field added to Config later, with a default, leaves the text (and so the key) of every earlier
    configuration as it was; a configuration of defaults only is ``{}``. Fields ``cls`` does not know
    (stored by a later wdlib) are kept.
    """
    defaults = _defaults(cls)
    differing = {}
    for name, value in fields.items():
        value = plain(value)
        if not _same(defaults.get(name, _MISSING), value):
            differing[name] = value
    return _text(differing)


def key_of_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_key(config: Config) -> str:
    """The key of ``config``: the sha256 hex of :func:`config_text`. Equal configurations give equal
    keys in any process; so do ``-0.0`` and ``0.0``; defaults added to Config later change no key.
    A Config is frozen, so its key is computed once and kept on the instance (a sweep asks for the
    keys of its grid several times)."""
    key = config.__dict__.get(_KEY)
    if key is None:
        key = key_of_text(config_text_of(config))
        config.__dict__[_KEY] = key
    return key


_KEY = "_wdlib_store_key"


def config_text_of(config: Config) -> str:
    """:func:`config_text` of a Config's fields (read directly: they are plain values already, so
    ``dataclasses.asdict``'s deep copy would only cost time)."""
    return config_text({f.name: getattr(config, f.name) for f in dataclasses.fields(config)}, type(config))


def config_fields(text: str) -> dict[str, Any]:
    """Every Config field of a stored configuration text: its own values, the defaults for the rest.

    JSON lists come back as tuples (as in Config). Fields Config does not know are kept after the others.
    """
    stored = json.loads(text)
    if not isinstance(stored, dict):
        raise DamagedRow("its configuration is not a JSON object")
    full = {f.name: getattr(_DEFAULT_CONFIG, f.name) for f in dataclasses.fields(Config)}
    full.update({name: _tuples(value) for name, value in stored.items()})
    return full


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


_DEFAULT_CONFIG = Config()


# --- arrays --------------------------------------------------------------------------------------


def array_bytes(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1024)
def _npy_header(prefix: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a version-1.0 .npy header, parsed by NumPy once per distinct
    header: rows of one sweep share a few headers, and parsing (a Python literal) is most of the time
    of reading a small array."""
    stream = io.BytesIO(prefix)
    np.lib.format.read_magic(stream)
    return np.lib.format.read_array_header_1_0(stream)


def array_from(blob: bytes) -> np.ndarray:
    """The array of .npy bytes; a ValueError if they are not a whole, pickle-free array."""
    if blob[:8] == b"\x93NUMPY\x01\x00":  # what np.save writes for every array wdlib stores
        start = 10 + int.from_bytes(blob[8:10], "little")
        shape, fortran, dtype = _npy_header(bytes(blob[:start]))
        count = math.prod(shape)
        if not dtype.hasobject:
            if len(blob) - start != count * dtype.itemsize:
                raise ValueError(f"{len(blob) - start} bytes of data for {count} values of {dtype}")
            flat = np.frombuffer(blob, dtype, count=count, offset=start)
            return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")
    return np.load(io.BytesIO(blob), allow_pickle=False)


def params_bytes(params: Mapping[str, Any]) -> bytes:
    """An .npz of the named arrays, in order, without pickle (object arrays are refused) and with a
    fixed timestamp: equal arrays, equal bytes. ``numpy.load`` reads it."""
    import zipfile  # here, not at the top: it imports lzma and bz2, which `import wdlib` need not

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in params.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def params_from(blob: bytes) -> dict[str, np.ndarray]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        params = {}
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise DamagedRow(f"its params hold {info.filename!r}, not an .npy array")
            params[info.filename[:-4]] = array_from(archive.read(info))
    return params


# --- records -------------------------------------------------------------------------------------


def result_record(run: Any) -> dict[str, Any]:
    """What the store keeps of a :class:`~wdlib.Run` (any model: every array of ``run.params``):
    plain values and NumPy arrays (picklable, small)."""
    finite = len(run.test_loss) and np.isfinite(run.test_loss[-1])
    w_norm = float(run.w_norm)
    return {
        "backend_version": run.backend_version,
        "engine_used": run.engine,
        "seconds": float(run.seconds),
        "diverged": bool(run.diverged),
        "diverged_at_epoch": run.meta.get("diverged_at_epoch"),
        "final_train_loss": float(run.train_loss[-1]) if finite else None,
        "final_test_loss": float(run.test_loss[-1]) if finite else None,
        "w_norm": w_norm if math.isfinite(w_norm) else None,
        "train_loss": np.asarray(run.train_loss),
        "test_loss": np.asarray(run.test_loss),
        "params": {name: np.asarray(array) for name, array in run.params.items()},
    }


def row_values(text: str, record: Mapping[str, Any], stored_at: float) -> tuple[Any, ...]:
    """The values of the columns :data:`COLUMNS` for the configuration of :func:`config_text`
    ``text`` and ``record`` (from :func:`result_record`, or a record read back: with ``params``, or
    the linear model's ``w`` and ``b``)."""
    params = record["params"] if "params" in record else {"w": record["w"], "b": record["b"]}
    return (key_of_text(text), text, *(record[c] for c in RESULT_COLUMNS),
            *(array_bytes(record[c]) for c in ARRAY_COLUMNS), params_bytes(params), stored_at)


def decode_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row (column name -> value, as :data:`COLUMNS`) as a record: every Config field,
    ``key``, the results, the arrays, ``params`` and, when the run has them, ``w`` and ``b``.

    Raises :class:`DamagedRow` when the row is not intact: its configuration does not hash to its key
    (edited, or a wrong key) or an array does not decode.
    """
    try:
        fields = config_fields(row["config"])
        if key_of_text(config_text(fields)) != row["key"]:
            raise DamagedRow("its configuration does not hash to its key")
        arrays = {c: array_from(row[c]) for c in ARRAY_COLUMNS}
        params = params_from(row["params"])
    except DamagedRow:
        raise
    except Exception as err:  # whatever a damaged blob or text makes NumPy, zipfile or json raise
        raise DamagedRow(f"it does not decode ({type(err).__name__}: {err})") from None
    record = {**fields, "key": row["key"], **{c: row[c] for c in RESULT_COLUMNS}, **arrays,
              "params": params, "stored_at": row["stored_at"]}
    record["diverged"] = bool(record["diverged"])
    record.update({name: params[name] for name in ("w", "b") if name in params})
    return record
