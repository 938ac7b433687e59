"""Parsing the ``wdlib`` command's option values into Config fields (numbers, ranges, lists, widths,
``FIELD=VALUE`` overrides, the model/optimizer/data options)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from .config import MAX_SEED
from .errors import ConfigError
from .limits import check_count

#: Fields that have their own option on every command that takes --set.
OWN_OPTIONS = {"lambd": "--lambd", "backend": "--backend (train) or --backends", "preset": "--preset",
               "dtype": "--dtype", "lambdas": "--lambd", "backends": "--backends", "seeds": "--seeds",
               "seed": "--seed (train) or --seeds"}


def parse_lambdas(texts: Sequence[str], option: str = "--lambd") -> list[float]:
    """Numbers ``3``, lists ``0,1,3`` and ranges ``start:stop:count`` (``count`` evenly spaced values
    from start to stop, both included: ``0:10:41`` is 0, 0.25, ..., 10)."""
    accepted = "numbers >= 0 as 3, 0,1,3 or start:stop:count such as 0:10:41"
    values: list[float] = []
    for text in texts:
        for part in filter(None, text.split(",")):
            pieces = part.split(":")
            try:
                if len(pieces) == 1:
                    values.append(float(part))
                    continue
                if len(pieces) != 3:
                    raise ValueError
                start, stop, count = float(pieces[0]), float(pieces[1]), int(pieces[2])
            except ValueError:
                raise ConfigError(option, part, accepted) from None
            if count < 1 or stop < start:
                raise ConfigError(option, part, accepted,
                                  "count must be >= 1 and start <= stop, e.g. 0:10:41")
            check_count(option, part, len(values) + count)
            # numpy.linspace, so that the grid (and each run's key in a store) is the same as a
            # Python sweep over numpy.linspace(start, stop, count): stored runs are found either way.
            import numpy as np

            values.extend(np.linspace(start, stop, count).tolist())
    if not values:
        raise ConfigError(option, " ".join(texts), accepted)
    from .validate import lambda_list

    return lambda_list(values, option)


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """Seeds ``3``, lists ``0,4,7`` and inclusive ranges ``0-9``."""
    accepted = "integers >= 0 as 3, 0,4,7 or an inclusive range first-last such as 0-9"
    seeds: list[int] = []
    for part in filter(None, text.split(",")):
        first, dash, last = part.partition("-")
        try:
            lo, hi = int(first), int(last) if dash else int(first)
        except ValueError:
            raise ConfigError(option, part, accepted) from None
        if lo < 0 or hi < lo or hi > MAX_SEED:
            raise ConfigError(option, part, accepted + f" (at most {MAX_SEED})",
                              f"write the smaller seed first: {hi}-{lo}" if hi < lo else "")
        check_count(option, part, len(seeds) + hi - lo + 1)
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise ConfigError(option, text, accepted)
    return seeds


def parse_widths(text: str, option: str = "--hidden") -> tuple[int, ...]:
    """Hidden layer widths ``64`` or ``128x64``."""
    try:
        widths = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ConfigError(option, text, "widths as 64 or 128x64") from None
    return widths


def parse_names(text: str | None) -> list[str] | None:
    """A comma-separated list of backend names (None: every installed backend)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--backends", text, "backend names separated by commas, e.g. numpy,torch")
    return names


def parse_sets(texts: Sequence[str], *, lists: bool = False) -> dict[str, Any]:
    """``FIELD=VALUE`` overrides of Config fields, typed like the field (``lists``: VALUE may be a
    comma-separated list, each value a sweep axis)."""
    from .config import Config

    types = {f.name: type(f.default) for f in dataclasses.fields(Config)}
    out: dict[str, Any] = {}
    for text in texts:
        name, eq, raw = text.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name:
            raise ConfigError("--set", text, "FIELD=VALUE, e.g. --set num_epochs=20")
        if name in OWN_OPTIONS:
            raise ConfigError("--set", text, "a Config field without an option of its own",
                              f"use {OWN_OPTIONS[name]} {raw or '...'}")
        kind = types.get(name, str)  # an unknown field is reported by make_config, with a suggestion
        parts = raw.split(",") if lists else [raw]
        values = [_typed(name, kind, part.strip()) for part in parts]
        out[name] = values if lists and len(values) > 1 else values[0]
    return out


def _typed(name: str, kind: type, raw: str) -> Any:
    if kind is tuple:  # hidden=64x32, penalize=W1x W2 as x-separated (a comma separates sweep values)
        return tuple(int(v) if v.isdigit() else v for v in raw.replace("x", " ").split())
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        return kind(raw)
    except ValueError:
        raise ConfigError(name, raw, f"a value of type {kind.__name__}") from None


def command_fields(args: argparse.Namespace, *, lists: bool = False) -> dict[str, Any]:
    """The Config fields of ``--set`` and of the model, optimizer and decay options together; a field
    given both ways (``--set wd=3 --wd 1``) is refused rather than one silently winning."""
    sets, options = parse_sets(args.set, lists=lists), model_fields(args)
    for name in sets.keys() & options.keys():
        flag = "--opt" if name == "optimizer_args" else f"--{name}"
        raise ConfigError("--set", f"{name}={sets[name]}", f"a field not also given as {flag}",
                          f"give it once: --set {name}=... or {flag} ...")
    return {**sets, **options}


def model_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields of the model, optimizer and decay options that were given."""
    options = {"model": args.model, "hidden": args.hidden, "optimizer": args.optimizer, "wd": args.wd,
               "decay": args.decay, "penalty": args.penalty, "mode": getattr(args, "mode", None)}
    fields = {k: v for k, v in options.items() if v is not None}
    if isinstance(fields.get("wd"), list):  # sweep's --wd grid
        grid = parse_lambdas(fields["wd"], "--wd")
        fields["wd"] = grid if len(grid) > 1 else grid[0]
    if "hidden" in fields:
        fields["hidden"] = parse_widths(fields["hidden"])
    if args.opt:  # NAME=VALUE, untyped by Config fields: an optimizer argument may share a field's name
        opts = {}
        for text in args.opt:
            name, eq, raw = text.partition("=")
            if not eq or not name.strip():
                raise ConfigError("--opt", text, "NAME=VALUE, e.g. --opt beta=0.9")
            opts[name.strip()] = _number_or_flag(f"--opt {name.strip()}", raw.strip())
        fields["optimizer_args"] = opts
    return fields


def _number_or_flag(option: str, text: str) -> float | bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        raise ConfigError(option, text, "a number or true/false") from None


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """``data=`` and ``test=`` for the arrays of ``--data FILE`` (.csv or .npz), or nothing."""
    if args.data is None:
        return {}
    from .datasets import load_data_file

    X, y, X_test, y_test = load_data_file(args.data)
    return {"data": (X, y), "test": None if X_test is None else (X_test, y_test)}
