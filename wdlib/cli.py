"""The ``wdlib`` command: backends, train, compare, sweep, reproduce.

Frameworks, matplotlib and Dask are imported only by the subcommand that needs them, so
``wdlib --help`` is instant. A user mistake prints one line (cause and fix) to stderr and exits 2; a
fault of the machine (disk full, store locked, out of memory) one line and exits 1 (``--debug``: the
traceback instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from .cli_args import (
    data_options,
    model_fields,
    parse_lambdas,
    parse_names,
    parse_seeds,
    parse_sets,
)
from .cli_errors import add_debug_option, one_line, report
from .errors import ConfigError, DivergenceError, WdlibError

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
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


# --- the subcommands -----------------------------------------------------------------------------


def cmd_backends(args: argparse.Namespace) -> int:
    from .backend import backends

    infos = backends()
    for info in infos:
        print(info)
    missing = [i for i in infos if not i.installed]
    if missing:
        print(f"\n{len(missing)} not installed: run the command shown to add one.")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .captions import shared_settings
    from .config import make_config
    from .outputs import check_output
    from .validate import check_backends

    options = {"dtype": args.dtype, "seed": args.seed, "num_epochs": args.num_epochs}
    fields = {**parse_sets(args.set), **model_fields(args),
              **{k: v for k, v in options.items() if v is not None}}
    data = data_options(args)
    if data:
        from .data import data_config

        config = data_config(data["data"], data["test"], args.preset, backend=args.backend,
                             lambd=args.lambd, **fields)[0]
    else:
        config = make_config(args.preset, backend=args.backend, lambd=args.lambd, **fields)
    check_backends([args.backend], "--backend")
    plot_path = check_output(args.plot, "--plot", "figure")
    json_path = check_output(args.json, "--json", "json", inputs={"--data": args.data})

    from .table import Table
    from .training import train

    try:
        run = train(args.backend, args.preset, lambd=args.lambd, **data, **fields)
    except DivergenceError as err:
        raise DivergenceError(  # the API's hint in command-line words
            f"the run diverged by epoch {err.epoch} (last finite test loss: {err.last_loss:.6g}): lower "
            f"the learning rate (e.g. --set lr={config.lr / 10:g}), or keep the diverged run with "
            "--set on_divergence=record", epoch=err.epoch, last_loss=err.last_loss) from None
    c = run.config
    row = {"backend": args.backend, "version": run.backend_version, "preset": args.preset,
           **({"wd": c.wd, "decay": c.decay} if c.mode == "concise" or c.wd else {}),
           **({"lambd": c.lambd} if c.mode == "scratch" else {}), "seed": c.seed, "dtype": c.dtype,
           "epochs": len(run.train_loss), "train_loss": float(run.train_loss[-1]),
           "test_loss": float(run.test_loss[-1]), "w_norm": run.w_norm, "seconds": run.seconds}
    if not args.quiet:
        print(Table([row], list(row)))
        settings = shared_settings([c], (*row, "decay"))
        if settings:
            print(f"settings: {settings}")
    if plot_path:
        from .plot import plot

        plot([run], plot_path, title=f"{args.backend}, {args.preset}, λ={run.config.lambd:g}")
        print(f"figure: {plot_path}")
    if json_path:
        import json

        from .io import write_text
        from .table import jsonable

        record = {"config": dataclasses.asdict(run.config), "backend_version": run.backend_version,
                  "seconds": run.seconds, "diverged": run.diverged, "train_loss": run.train_loss,
                  "test_loss": run.test_loss, "params": run.params,
                  **({"w": run.params["w"][:, 0], "b": run.params["b"]} if "w" in run.params else {}),
                  "w_norm": run.w_norm}
        write_text(json_path, json.dumps(jsonable(record), indent=1) + "\n")
        print(f"json: {json_path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .outputs import check_output

    lambdas = parse_lambdas(args.lambd)
    seeds = parse_seeds(args.seeds)
    outputs = {"plot": check_output(args.plot, "--plot", "figure"),
               "csv": check_output(args.csv, "--csv", "csv", inputs={"--data": args.data}),
               "json": check_output(args.json, "--json", "json", inputs={"--data": args.data})}
    from .compare import compare

    fields = {**parse_sets(args.set), **model_fields(args)}
    result = compare(parse_names(args.backends), lambdas, args.preset, seeds, args.dtype,
                     fields.pop("mode", "scratch"), **data_options(args), **fields)
    if not args.quiet:
        print(result)
    if outputs["plot"]:
        result.plot(outputs["plot"])
        print(f"figure: {outputs['plot']}")
    if outputs["csv"]:
        print(f"csv: {result.to_csv(outputs['csv'])}")
    if outputs["json"]:
        result.to_json(outputs["json"])
        print(f"json: {outputs['json']}")
    for row in result.flagged:
        print(f"wdlib: warning: {row['backend']} (λ={row['lambd']:g}, seed {row['seed']}) {row['status']} "
              "from the NumPy float64 reference", file=sys.stderr)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .outputs import check_output
    from .store import check_store_path

    plot_path = check_output(args.plot, "--plot", "figure")
    export_path = check_output(args.export, "--export", "table",
                               inputs={"--data": args.data, "--store": args.store})
    if args.workers is not None and args.scheduler:
        raise ConfigError("--workers", args.workers, "no value with --scheduler",
                          "the Dask cluster decides the number of workers")
    if args.lambd is None:
        if not (plot_path or export_path):
            raise ConfigError("--lambd", None, "a grid such as --lambd 0:10:41",
                              "or --export FILE / --plot FILE to read an existing store")
        from .sweep_table import load_sweep

        table = load_sweep(args.store)
    else:
        lambdas = parse_lambdas(args.lambd)
        seeds = parse_seeds(args.seeds)
        fields = {**parse_sets(args.set, lists=True), **model_fields(args)}
        fields.update({k: v for k, v in (("dtype", _split(args.dtype)),) if v is not None})
        data = data_options(args)
        from .sweep import sweep, sweep_configs

        if not data:
            sweep_configs(lambdas, seeds, parse_names(args.backends), preset=_split(args.preset), **fields)
        check_store_path(args.store)
        with _executor(args.scheduler) as executor:
            table = sweep(lambdas, seeds, parse_names(args.backends), preset=_split(args.preset),
                          store=args.store, executor=executor, workers=args.workers,
                          vectorize=not args.no_vectorize, **data, **fields)
    print(table.caption() if args.quiet else table)
    if export_path:
        if export_path.suffix.lower() == ".json":
            table.to_json(export_path)
        else:
            table.to_csv(export_path)
        print(f"exported: {export_path}")
    if plot_path:
        table.plot(plot_path)
        print(f"figure: {plot_path}")
    return 0


def _split(text: str | None) -> Any:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return parts if len(parts) > 1 else (parts[0] if parts else text)


class _executor:
    """The Dask executor of ``--scheduler`` (closed afterwards), or None for the local process pool."""

    def __init__(self, address: str | None) -> None:
        self.address, self.client = address, None

    def __enter__(self) -> Any:
        if not self.address:
            return None
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--scheduler", self.address, "an option that needs Dask",
                              "install it: pip install 'dask[distributed]'") from None
        try:
            self.client = Client(self.address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as err:
            raise ConfigError("--scheduler", self.address, "the address of a running Dask scheduler",
                              f"could not connect ({err}); start one with: dask scheduler") from None
        return self.client.get_executor()

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()


def cmd_decay_table(args: argparse.Namespace) -> int:
    from .outputs import check_output
    from .semantics import decay_semantics

    check_output(args.json, "--json", "json")
    table = decay_semantics()
    if args.json:
        table.to_json(args.json)
        print(f"json: {args.json}")
    else:
        print(table)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .books import reproduce
    from .outputs import check_output

    check_output(args.out, "--out", "folder")
    runs = reproduce(args.book, out=args.out, edition=args.edition, seed=args.seed, num_epochs=args.epochs)
    for name, run in runs.items():
        print(f"{args.book} {name}: train loss {run.train_loss[-1]:.6g}, test loss "
              f"{run.test_loss[-1]:.6g}; the book prints: {run.printed}")
    if args.out is not None:
        print(f"figures (PNG and SVG) in {args.out}")
    return 0


# --- the parser ----------------------------------------------------------------------------------


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The data, model, penalty and optimizer options shared by train, compare and sweep."""
    g = p.add_argument_group("data, model and optimizer")
    g.add_argument("--data", metavar="FILE", help="your own data: .npz (X, y [, X_test, y_test]) or .csv "
                   "(header; the last column, or one named y, is the target)")
    g.add_argument("--model", help="linear (default) or mlp")
    g.add_argument("--hidden", metavar="WIDTHS", help="MLP hidden widths, e.g. 256 or 128x64")
    g.add_argument("--penalty", help="l2 (default), l1 or elastic_net (with --set l1_ratio=...)")
    g.add_argument("--optimizer", help="sgd (default), momentum or adam")
    g.add_argument("--opt", action="append", default=[], metavar="NAME=VALUE",
                   help="an optimizer argument, e.g. --opt beta=0.9 --opt nesterov=true (repeatable)")
    g.add_argument("--wd", type=float, help="the optimizer's weight decay (default 0)")
    g.add_argument("--decay", help="how --wd acts: coupled (default), decoupled (AdamW) or independent")
    p.add_argument("--quiet", action="store_true", help="print no table (only where files were written)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wdlib", description="Weight decay experiments from Dive into Deep Learning, "
                     "on NumPy, PyTorch, MXNet and JAX.", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    p = sub.add_parser("backends", help="what is installed, versions, how to install the rest")
    p.set_defaults(handler=cmd_backends)

    common = dict(preset={"default": "d2l", "help": "d2l (default) or gluonbook"},
                  set={"action": "append", "default": [], "metavar": "FIELD=VALUE",
                       "help": "any other wdlib.Config field, e.g. --set num_epochs=20 (repeatable)"})

    p = sub.add_parser("train", help="one run on one backend")
    p.add_argument("--backend", default="numpy", help="numpy (default), torch, mxnet, jax")
    p.add_argument("--lambd", type=float, default=0.0, help="weight decay λ (default 0)")
    p.add_argument("--preset", **common["preset"])
    p.add_argument("--dtype", help="float32 (default) or float64")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--num-epochs", type=int, help="default: the preset's")
    p.add_argument("--set", **common["set"])
    p.add_argument("--plot", metavar="FILE.png", help="write the loss curves")
    p.add_argument("--json", metavar="FILE.json", help="write the run (config, losses, weights)")
    p.add_argument("--mode", help="scratch (default: the penalty in the loss) or concise (the framework's "
                   "optimizer weight decay --wd)")
    add_model_options(p)
    p.set_defaults(handler=cmd_train)

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
    p.set_defaults(handler=cmd_compare)

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
    add_model_options(p)
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("decay-table", help="what each framework's weight_decay means, and the conversions")
    p.add_argument("--json", metavar="FILE.json", help="write the table as JSON instead of printing it")
    p.set_defaults(handler=cmd_decay_table)

    p = sub.add_parser("reproduce", help="the book's figures and numbers")
    p.add_argument("book", choices=["gluonbook", "d2l"])
    p.add_argument("--out", metavar="DIR", help="folder for the figures")
    p.add_argument("--seed", type=int, default=0, help="the seed of the framework's RNG (default 0)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="override the book's epochs (gluonbook's printed edition: 100)")
    p.add_argument("--edition", choices=["en", "zh"],
                   help="the English or Chinese edition: which line it prints (default: your locale)")
    p.set_defaults(handler=cmd_reproduce)
    add_debug_option(parser, sub)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    print(f"wdlib: warning: {one_line(str(message))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status: 0, 2 for a
    user mistake, 1 for a fault of the machine or a bug (:mod:`wdlib.cli_errors`), one line on stderr
    and no traceback unless ``--debug`` is given."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = None
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():  # a warning is one line too, without Python's file:line
            warnings.showwarning = _one_line_warning
            status = args.handler(args)
        sys.stdout.flush()  # a closed pipe (`wdlib ... | head`) fails here, not at the exit
        return status
    except BaseException as err:  # every exception ends as one line and a status
        return report(err, debug=getattr(args, "debug", False) if args is not None else "--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
