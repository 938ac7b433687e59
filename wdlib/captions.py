"""The line beneath a table that names what its columns do not: the settings every run shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .config import Config, make_config

#: Fields a table never lists as a shared setting: set by wdlib or following from other fields.
_UNLISTED = ("data_fingerprint", "model_fingerprint", "penalty_fingerprint", "preset", "on_divergence")


def shared_settings(configs: Sequence[Config | Mapping[str, Any]], shown: Sequence[str] = ()) -> str:
    """The settings every config (or row of Config fields) shares that differ from the defaults,
    besides the ``shown`` columns, e.g. ``"model='mlp', hidden=(256,), optimizer='adam'"``: a table's
    caption names what its columns do not."""
    rows = [{name: _tupled(value) for name, value in
             (dataclasses.asdict(c) if isinstance(c, Config) else c).items()} for c in configs]
    if not rows:
        return ""
    first = rows[0]
    defaults = dataclasses.asdict(make_config(first.get("preset", "d2l")))
    derived = ("n_train", "n_test", "num_inputs") if first.get("dataset") != "synthetic" else ()
    same = [name for name, value in first.items()
            if name in defaults and name not in (*shown, *_UNLISTED, *derived)
            and value != defaults[name] and all(row.get(name) == value for row in rows[1:])]
    return ", ".join(f"{name}={first[name]!r}" for name in same)


def _tupled(value: Any) -> Any:
    """Lists (as JSON gives tuples back) as tuples, recursively."""
    return tuple(_tupled(v) for v in value) if isinstance(value, (list, tuple)) else value
