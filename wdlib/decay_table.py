"""The table of weight-decay spellings (:func:`wdlib.decay_semantics`) as a terminal shows it: one
short block of lines per spelling, since its columns (the core chain, the conversions) are too wide
for one line each; :meth:`DecayTable.wide` gives the one-line-per-row table, a notebook the HTML."""

from __future__ import annotations

import textwrap
from typing import Any

from .table import Table, format_table


class DecayTable(Table):
    """Every spelling of weight decay: framework, argument, coupled or not, scaled by lr or not,
    default, how the bias is left out, the core chain it equals and the spellings it converts to."""

    def __str__(self) -> str:
        return "\n\n".join(decay_block(row) for row in self.rows) + f"\n\n{self.caption()}"

    def wide(self) -> str:
        """The table as one line per spelling (wider than a terminal)."""
        return format_table(self.shown, self._cells())


def decay_block(row: dict[str, Any]) -> str:
    """One spelling of weight decay as a few lines of at most 100 characters."""
    lines = [f"{row['key']}  ({row['framework']}: {row['argument']}, default {row['default']:g})",
             f"  decay: {row['decay']}; scaled by lr: {row['lr_scaled']}", f"  bias: {row['bias']}",
             *textwrap.wrap(row["core_chain"], 98, initial_indent="  = ", subsequent_indent="      "),
             f"  checked: {row['equal']}"]
    if row["same_as"]:
        lines += textwrap.wrap(row["same_as"], 96, initial_indent="  same update as: ",
                               subsequent_indent="    ")
    return "\n".join(lines)
