"""The Figure class of every wdlib figure: a plain ``matplotlib.figure.Figure`` that shows itself.

Imported only when a figure is made (``import wdlib`` imports no matplotlib). wdlib never touches
pyplot or the global backend: its figures belong to no figure manager, so ``plt.show()`` and the
user's own backend are exactly as they were. To display inline in Jupyter without pyplot, the class
adds ``_repr_png_``, which IPython calls when a figure is a cell's value (or given to ``display``).
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

#: Resolution of the PNG written for inline display and for files.
DPI = 100


class InlineFigure(Figure):
    """A matplotlib Figure (every Figure method works) that renders itself as PNG in a notebook."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()
