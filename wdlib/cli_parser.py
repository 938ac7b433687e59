"""The ``wdlib`` command's parser: subcommands and options (the handlers are in :mod:`wdlib.cli`)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .cli_errors import add_debug_option
from .errors import WdlibError

EPILOG = """examples:
  wdlib backends
  wdlib train --backend jax --lambd 3 --plot run.png
  wdlib compare --lambd 0 3 --plot compare.png --csv compare.csv
  wdlib sweep --lambd 0:10:41 --seeds 0-9 --backends torch,jax --store runs.sqlite --plot sweep.png
  wdlib sweep --store runs.sqlite --export runs.csv
  wdlib reproduce d2l --out figures
"""


class UsageError(WdlibError, ValueError):
    """A command line that argparse cannot parse."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake as a UsageError and no abbreviations (``--mode`` must not become
    ``--model`` on a command that has only the latter)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse's, but options a subcommand does not know are reported by that subcommand's
        parser, which can say which of its options was meant."""
        known, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = next((a.choices.get(getattr(known, a.dest, None)) for a in self._actions
                           if isinstance(a, argparse._SubParsersAction)), None)
            (chosen or self).error("unrecognized arguments: " + " ".join(extras))
        return known

    def error(self, message: str) -> NoReturn:
        hints = [self._hint(word) for word in message.split() if word.startswith("--")] \
            if message.startswith("unrecognized arguments") else []
        if "invalid choice: '" in message:  # a misspelt command: wdlib trian
            import difflib

            word = message.split("invalid choice: '")[1].split("'")[0]
            choices = [c for a in self._actions if a.choices for c in a.choices]
            hints += [f"did you mean {c}?" for c in difflib.get_close_matches(word, choices, n=1)]
        hint = "; ".join(h for h in hints if h)
        raise UsageError(f"{message}{'; ' + hint if hint else ''} (see: {self.prog} --help)")

    def _hint(self, word: str) -> str:
        """``did you mean --x?`` for an unknown option: a Config field's usual other name
        (``--weight-decay``: ``--wd``), a near spelling, or ``--set field=...`` for a field that has
        no option of its own."""
        import difflib

        from .config import ALIASES, FIELD_CHECKS

        name = word.split("=")[0][2:].replace("-", "_")
        field = ALIASES.get(name, name)
        option = "--" + field.replace("_", "-")
        options = [s for s in self._option_string_actions if s.startswith("--")]
        if option in options:
            return f"did you mean {option}?"
        if field in FIELD_CHECKS and "--set" in options:
            return f"did you mean --set {field}=...?"
        close = difflib.get_close_matches(word.split("=")[0], options, n=1)
        return f"did you mean {close[0]}?" if close else ""


def _one_lambda(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        hint = ": train runs one λ; compare and sweep take several" if ("," in text or ":" in text) else ""
        raise argparse.ArgumentTypeError(f"expected one number, got {text!r}{hint}") from None


def add_model_options(p: argparse.ArgumentParser, wd_grid: bool = False) -> None:
    """The data, model, penalty and optimizer options shared by train, compare and sweep (``wd_grid``:
    ``--wd`` takes a grid, as sweep's ``--lambd`` does)."""
    g = p.add_argument_group("data, model and optimizer")
    g.add_argument("--data", metavar="FILE", help="your own data: .npz (X, y [, X_test, y_test]) or .csv "
                   "(header; the last column, or one named y, is the target)")
    g.add_argument("--model", help="linear (default) or mlp")
    g.add_argument("--hidden", metavar="WIDTHS", help="MLP hidden widths, e.g. 256 or 128x64")
    g.add_argument("--penalty", help="l2 (default), l1 or elastic_net (with --set l1_ratio=...)")
    g.add_argument("--optimizer", help="sgd (default), momentum or adam")
    g.add_argument("--opt", action="append", default=[], metavar="NAME=VALUE",
                   help="an optimizer argument, e.g. --opt beta=0.9 --opt nesterov=true (repeatable)")
    if wd_grid:
        g.add_argument("--wd", nargs="+", help="the optimizer's weight decay: one value or a grid like "
                       "--lambd's (0:1:5, 0,0.1,1); without --lambd, λ is 0")
    else:
        g.add_argument("--wd", type=float, help="the optimizer's weight decay (default 0)")
    g.add_argument("--decay", help="how --wd acts: coupled (default), decoupled (AdamW) or independent")
    p.add_argument("--quiet", action="store_true", help="print no table (only where files were written)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wdlib", description="Weight decay experiments from Dive into Deep Learning, "
                     "on NumPy, PyTorch, MXNet and JAX.", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    p = sub.add_parser("backends", help="what is installed, versions, how to install the rest")

    common = dict(preset={"default": "d2l", "help": "d2l (default) or gluonbook"},
                  set={"action": "append", "default": [], "metavar": "FIELD=VALUE",
                       "help": "any other wdlib.Config field, e.g. --set num_epochs=20 (repeatable)"})

    p = sub.add_parser("train", help="one run on one backend")
    p.add_argument("--backend", default="numpy", help="numpy (default), torch, mxnet, jax")
    p.add_argument("--lambd", type=_one_lambda, default=0.0, help="weight decay λ (default 0)")
    p.add_argument("--preset", **common["preset"])
    p.add_argument("--dtype", help="float32 (default) or float64")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--num-epochs", "--epochs", type=int, help="default: the preset's")
    p.add_argument("--set", **common["set"])
    p.add_argument("--plot", metavar="FILE.png", help="write the loss curves")
    p.add_argument("--json", metavar="FILE.json", help="write the run (config, losses, weights)")
    p.add_argument("--mode", help="scratch (default: the penalty in the loss) or concise (the framework's "
                   "optimizer weight decay --wd)")
    add_model_options(p)

    p = sub.add_parser("compare", help="every backend on the same inputs vs the NumPy float64 reference")
    p.add_argument("--backends", help="comma-separated (default: every installed backend)")
    p.add_argument("--lambd", nargs="+", default=["3"], help="one or more λ (default 3); 0:10:5 ranges too")
    p.add_argument("--seeds", default="0", help="e.g. 0, 0,1 or 0-4 (default 0)")
    p.add_argument("--preset", **common["preset"])
    p.add_argument("--dtype", default="float32", help="float32 (default) or float64")
    p.add_argument("--mode", default="scratch", help="scratch (default) or concise")
    p.add_argument("--set", **common["set"])
    p.add_argument("--plot", metavar="FILE.png", help="overlay figure: one panel per λ")
    p.add_argument("--csv", metavar="FILE.csv")
    p.add_argument("--json", metavar="FILE.json")
    add_model_options(p)

    p = sub.add_parser(
        "sweep", help="a grid of runs, stored in SQLite; reruns skip stored runs",
        description="Run every combination of --lambd, --seeds, --backends (and --set FIELD=a,b) and "
        "store each run in --store as it finishes. Rerunning skips stored runs, so an interrupted "
        "sweep resumes and a larger grid computes only the new runs. Without --lambd, --export and "
        "--plot read the store.")
    p.add_argument("--lambd", nargs="+", help="λ grid: start:stop:count (0:10:41), lists 0,1,3, numbers")
    p.add_argument("--seeds", default="0", help="e.g. 0-9 or 0,3,5 (default 0)")
    p.add_argument("--backends", help="comma-separated (default: every installed backend)")
    p.add_argument("--preset", default="d2l", help="d2l (default), gluonbook, or both: d2l,gluonbook")
    p.add_argument("--dtype", default=None, help="float32 (default), float64, or both: float32,float64")
    p.add_argument("--mode", help="scratch (default), concise (the λ grid is then the framework's weight "
                   "decay wd), or both: scratch,concise")
    p.add_argument("--set", **{**common["set"], "help": "other Config fields; comma lists sweep them, "
                                                        "e.g. --set num_epochs=50,100"})
    p.add_argument("--store", default="runs.sqlite", help="SQLite results file (default runs.sqlite)")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per CPU)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--no-vectorize", action="store_true",
                   help="train every run alone (default: runs differing only in λ train as one batched "
                        "run, equal to the single runs within the cross-backend tolerance)")
    p.add_argument("--plot", metavar="FILE.png", help="test loss and ||w|| vs λ, with the exact ridge path")
    p.add_argument("--export", metavar="FILE.csv", help="write the table (.csv, or .json with curves)")
    add_model_options(p, wd_grid=True)

    p = sub.add_parser("decay-table", help="what each framework's weight_decay means, and the conversions")
    p.add_argument("--json", metavar="FILE.json", help="write the table as JSON instead of printing it")
    p.add_argument("--wide", action="store_true", help="one line per spelling, every column (~470 characters "
                   "wide; default: a short block per spelling)")

    p = sub.add_parser("reproduce", help="the book's figures and numbers")
    p.add_argument("book", choices=["gluonbook", "d2l"])
    p.add_argument("--out", metavar="DIR", help="folder for the figures")
    p.add_argument("--seed", type=int, default=0, help="the seed of the framework's RNG (default 0)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="override the book's epochs (gluonbook's printed edition: 100)")
    p.add_argument("--edition", choices=["en", "zh"],
                   help="the English or Chinese edition: which line it prints (default: your locale)")
    add_debug_option(parser, sub)
    return parser




def command_options(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The option strings (``--model``, ...) of ``parser``'s subcommand ``command``."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        sub = action.choices.get(command) if isinstance(action.choices, dict) else None
        if sub is not None:
            return {s for a in sub._actions for s in a.option_strings}
    return set()
