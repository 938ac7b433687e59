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
from typing import Any

from .cli_args import (
    command_fields,
    data_options,
    parse_lambdas,
    parse_names,
    parse_seeds,
    parse_sets,
)
from .cli_errors import one_line, report
from .cli_parser import build_parser, command_options
from .errors import ConfigError, DivergenceError

# --- the subcommands -----------------------------------------------------------------------------


def cmd_backends(args: argparse.Namespace) -> int:
    from .registry import backends

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
    fields = {**command_fields(args),
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

    from .run import last_loss_text
    from .table import Table
    from .training import train
    from .validate import divergence_cause

    try:
        run = train(args.backend, args.preset, lambd=args.lambd, **data, **fields)
    except DivergenceError as err:
        raise DivergenceError(  # the API's hint in command-line words
            f"the run diverged by epoch {err.epoch} ({last_loss_text(err.last_loss)}): "
            f"{divergence_cause(config, cli=True)}", epoch=err.epoch, last_loss=err.last_loss) from None
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

    fields = command_fields(args)
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
    if args.lambd is None and args.wd is None and "wd" not in parse_sets(args.set, lists=True):
        if not (plot_path or export_path):
            raise ConfigError("--lambd", None, "a grid such as --lambd 0:10:41 (or --wd 0:1:5)",
                              "or --export FILE / --plot FILE to read an existing store")
        from .sweep_table import load_sweep

        table = load_sweep(args.store)
    else:
        lambdas = parse_lambdas(args.lambd) if args.lambd is not None else None  # None: 0, a wd grid
        seeds = parse_seeds(args.seeds)
        fields = command_fields(args, lists=True)
        if "mode" in fields:
            fields["mode"] = _split(fields["mode"])
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
        print(table.wide() if args.wide else table)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .books import reproduce
    from .outputs import check_output

    check_output(args.out, "--out", "folder")
    runs = reproduce(args.book, out=args.out, edition=args.edition, seed=args.seed, num_epochs=args.epochs)
    for name, run in runs.items():
        print(f"{args.book} {name}: train loss {run.train_loss[-1]:.6g}, test loss "
              f"{run.test_loss[-1]:.6g}; printed as the book's code prints it: {run.printed}")
    print("(the book's own code, run on the same random streams, prints these bits: tests/test_books.py)")
    if args.out is not None:
        print(f"figures (PNG and SVG) in {args.out}")
    return 0


HANDLERS = {"backends": cmd_backends, "train": cmd_train, "compare": cmd_compare, "sweep": cmd_sweep,
            "decay-table": cmd_decay_table, "reproduce": cmd_reproduce}


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    print(f"wdlib: warning: {one_line(str(message))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status: 0, 2 for a
    user mistake, 1 for a fault of the machine or a bug (:mod:`wdlib.cli_errors`), one line on stderr
    and no traceback unless ``--debug`` is given."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, options = None, ()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        options = command_options(parser, args.command)
        with warnings.catch_warnings():  # a warning is one line too, without Python's file:line
            warnings.showwarning = _one_line_warning
            status = HANDLERS[args.command](args)
        sys.stdout.flush()  # a closed pipe (`wdlib ... | head`) fails here, not at the exit
        return status
    except BaseException as err:  # every exception ends as one line and a status
        return report(err, debug=getattr(args, "debug", False) if args is not None else "--debug" in argv,
                      options=options)


if __name__ == "__main__":
    sys.exit(main())
