"""Schema 1 stores (wdlib up to commit 29912ce): read them as they are, or migrate them to schema 2.

Schema 1 keyed a run by the sha256 of the JSON of *every* Config field (so each new field changed
every key, and ``lambd=-0.0`` had another key than ``0.0``) and kept the linear model's ``w`` and
``b`` in two .npy columns. Its rows map to schema 2 rows one to one: the key is recomputed from the
row's configuration (fields it lacks take their defaults), ``w`` and ``b`` become ``params``, and
every other column (the loss curves' bytes included) is kept as it was.

Two v1 rows can map to one schema-2 key (``-0.0`` and ``0.0``): the one stored first is kept, and
the other, like any row that does not decode, is moved verbatim to the table ``runs_v1_leftover``
(with the reason) instead of being dropped: a migration loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

from .store_format import (
    ARRAY_COLUMNS,
    COLUMNS,
    RESULT_COLUMNS,
    RUNS_TABLE,
    SCHEMA_VERSION,
    DamagedRow,
    array_from,
    config_fields,
    config_text,
    decode_row,
    key_of_text,
    params_bytes,
)

V1_COLUMNS = ("key", "config", *RESULT_COLUMNS, "train_loss", "test_loss", "w", "b", "stored_at")
LEFTOVER_TABLE = "runs_v1_leftover"


def v1_key(text: str) -> str:
    """The key schema 1 gave the configuration it stored as ``text`` (all fields, sorted)."""
    canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def as_v2(row: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 row (column -> value, as :data:`V1_COLUMNS`) as the schema-2 row it migrates to.

    Raises :class:`~wdlib.store_format.DamagedRow` if the row is not intact (its configuration does
    not hash to its v1 key, or an array does not decode), as :func:`~wdlib.store_format.decode_row`.
    """
    try:
        if v1_key(row["config"]) != row["key"]:
            raise DamagedRow("its configuration does not hash to its key")
        text = config_text(config_fields(row["config"]))
        params = params_bytes({"w": array_from(row["w"]), "b": array_from(row["b"])})
    except DamagedRow:
        raise
    except Exception as err:
        raise DamagedRow(f"it does not decode ({type(err).__name__}: {err})") from None
    new = {c: row[c] for c in COLUMNS if c in row}
    new.update(key=key_of_text(text), config=text, params=params)
    return new


def decode_v1_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 row as the record a schema-2 store gives for it (see decode_row)."""
    return decode_row(as_v2(row))


def index(db: sqlite3.Connection) -> tuple[dict[str, str], int]:
    """For reading a v1 store as it is: {schema-2 key: v1 key of the row kept for it}, keeping the
    first stored of rows with equal configurations; and the number of rows whose configuration does
    not parse (they are damaged)."""
    found: dict[str, str] = {}
    unreadable = 0
    for key, text in db.execute("SELECT key, config FROM runs ORDER BY stored_at, key"):
        try:
            found.setdefault(key_of_text(config_text(config_fields(text))), key)
        except (ValueError, TypeError, DamagedRow):
            unreadable += 1
    return found, unreadable


def rows(db: sqlite3.Connection, v1_keys: Iterator[str] | list[str]) -> Iterator[dict[str, Any]]:
    """The v1 rows of ``v1_keys``, as column -> value."""
    query = f"SELECT {', '.join(V1_COLUMNS)} FROM runs WHERE key=?"
    for key in v1_keys:
        for row in db.execute(query, (key,)):
            yield dict(zip(V1_COLUMNS, row, strict=True))


def migrate(db: sqlite3.Connection) -> tuple[int, int]:
    """Rewrite the v1 table ``runs`` as schema 2, inside the caller's transaction.

    Returns (rows migrated, rows moved to :data:`LEFTOVER_TABLE`).
    """
    db.execute("ALTER TABLE runs RENAME TO runs_v1")
    db.execute(RUNS_TABLE)
    insert = f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    migrated = leftover = 0
    select = f"SELECT {', '.join(V1_COLUMNS)} FROM runs_v1 ORDER BY stored_at, key"
    for values in db.execute(select).fetchall():
        row = dict(zip(V1_COLUMNS, values, strict=True))
        try:
            new = as_v2(row)
            for column in ARRAY_COLUMNS:  # checked here, so a migrated row is an intact row
                array_from(new[column])
            reason = None
            if db.execute("SELECT 1 FROM runs WHERE key=?", (new["key"],)).fetchone():
                reason = f"same configuration as the row kept under key {new['key']}"
        except DamagedRow as err:
            reason = str(err)
        if reason is None:
            db.execute(insert, tuple(new[c] for c in COLUMNS))
            migrated += 1
            continue
        if not leftover:
            db.execute(f"CREATE TABLE IF NOT EXISTS {LEFTOVER_TABLE} AS SELECT *, '' AS reason "
                       "FROM runs_v1 WHERE 0")
        db.execute(f"INSERT INTO {LEFTOVER_TABLE} SELECT *, ? FROM runs_v1 WHERE key=?",
                   (reason, row["key"]))
        leftover += 1
    db.execute("DROP TABLE runs_v1")
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('migrated_from', '1')")
    return migrated, leftover
