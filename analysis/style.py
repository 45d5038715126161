"""Figure style, deterministic saving (PNG + PDF), step formatting, and CSV + Markdown tables.

Fonts are sized in points at the saved size (figures are never rescaled): body 10 pt, ticks and
legends 9 pt, titles 11 pt. Saving strips time stamps so a figure regenerates identically.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.layout_engine import PlaceHolderLayoutEngine  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RC = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 12, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 150,
    "pdf.fonttype": 42, "svg.hashsalt": "avem", "figure.constrained_layout.use": True,
}
NOTE_SIZE = 9
FLOAT_FORMAT = "%.6g"


def setup() -> None:
    """Apply the suite's matplotlib style (idempotent)."""
    plt.rcParams.update(RC)


def fmt_steps(steps: float) -> str:
    """Compact step count: 100000 -> '100k', 1500000 -> '1.5M', 2000 -> '2k', 500 -> '500'."""
    steps = float(steps)
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(steps) >= div:
            v = steps / div
            return f"{v:.0f}{suffix}" if v == int(v) else f"{v:.3g}{suffix}"
    return f"{steps:.0f}"


def steps_axis(ax, axis: str = "x") -> None:
    """Tick labels as compact step counts (e.g. 100k)."""
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: fmt_steps(v))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


class Frame:
    """A figure in three stacked parts: the panels, a legend row, and a note row (e.g. missing runs).

    Keeping legend and note in their own sub-figures means they never overlap each other or the
    panels, whatever their length. Heights are inches at the saved size.
    """

    def __init__(self, width: float, main_height: float, legend_labels=(), note: str | None = None):
        self.width = width
        labels = [str(x) for x in legend_labels]
        self.legend_cols = legend_columns(labels, width)
        self.note = wrap(note, note_width(width)) if note else None
        legend_h = 0.23 * math.ceil(len(labels) / self.legend_cols) + 0.12 if labels else 0.0
        note_h = 0.17 * (self.note.count("\n") + 1) + 0.1 if self.note else 0.0
        self.fig = plt.figure(figsize=(width, main_height + legend_h + note_h), layout="constrained")
        ratios = [main_height] + [h for h in (legend_h, note_h) if h]
        parts = list(self.fig.subfigures(len(ratios), 1, height_ratios=ratios)) if len(ratios) > 1 else [self.fig]
        self.main = parts.pop(0)
        self.legend_part = parts.pop(0) if legend_h else None
        self.note_part = parts.pop(0) if note_h else None
        if self.note_part is not None:
            self.note_part.text(0.5, 0.5, self.note, ha="center", va="center", fontsize=NOTE_SIZE, color="#b2182b")

    def legend(self, handles, labels) -> None:
        """Draw the legend (call once, with as many entries as announced)."""
        if self.legend_part is not None and handles:
            self.legend_part.legend(handles, labels, loc="center", ncol=self.legend_cols, frameon=False)

    def save(self, out_dir: Path, stem: str) -> list[Path]:
        return save(self.fig, out_dir, stem)


def legend_columns(labels: list[str], width_in: float) -> int:
    """How many legend columns of 9-pt labels fit across ``width_in`` inches."""
    if not labels:
        return 1
    col = max(len(x) for x in labels) * NOTE_SIZE * 0.58 / 72 + 0.75  # text + handle + padding
    return max(1, min(len(labels), int((width_in - 0.3) // col)))


def note_width(width_in: float) -> int:
    """Characters of 9-pt text that fit on a line ``width_in`` inches wide."""
    return max(40, int(width_in * 72 / (NOTE_SIZE * 0.56)))


LAYOUT_GRID = 2.0 ** -20
"""Step (a fraction of the enclosing figure) that :func:`freeze_layout` snaps every box to."""


def snap(values) -> np.ndarray:
    """``values`` rounded to the nearest multiple of ``LAYOUT_GRID`` (exact binary fractions, never -0.0).

    Two inputs a few ulps apart land on the same float unless they straddle a grid midpoint, which for
    values a few ulps apart has a probability of about 1e-10.
    """
    return np.round(np.asarray(values, dtype=float) / LAYOUT_GRID) * LAYOUT_GRID + 0.0


def _subfigures(fig) -> list:
    """Every sub-figure of ``fig``, nested ones included."""
    out = []
    for sub in getattr(fig, "subfigs", []):
        out += [sub, *_subfigures(sub)]
    return out


def freeze_layout(fig) -> None:
    """Run ``fig``'s layout engine once at the PNG resolution, snap its result, then switch the engine off.

    Constrained layout solves its constraints with kiwisolver, whose internal order follows the memory
    addresses of its variables; the same figure can therefore come out a few ulps apart from one
    process (or one construction) to the next, which a PDF prints as a different last digit. Snapping
    every axes position and sub-figure box to ``LAYOUT_GRID`` (1e-6 of the figure: far below a pixel
    or a printed point) makes the layout, and every coordinate drawn from it, the same float in every
    process. The PNG and the PDF then share this one layout.
    """
    if fig.get_layout_engine() is None or isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        return  # no engine, or one already frozen
    fig.set_dpi(plt.rcParams["savefig.dpi"])
    fig.canvas.draw()
    fig.set_layout_engine("none")
    for sub in _subfigures(fig):
        sub.bbox_relative.set_points(snap(sub.bbox_relative.get_points()))
    for ax in fig.get_axes():
        ax.set_position(snap(ax.get_position().bounds))


def save(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` without time stamps from one frozen layout (:func:`freeze_layout`);
    closes the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"
    freeze_layout(fig)
    fig.savefig(png, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    plt.close(fig)
    return [png, pdf]


def placeholder(out_dir: Path, stem: str, title: str, message: str) -> list[Path]:
    """A figure that only states why there is nothing to plot (kept so every expected file exists)."""
    setup()
    fig, ax = plt.subplots(figsize=(6.0, 2.4))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, wrap(message, 80), ha="center", va="center", fontsize=10, transform=ax.transAxes)
    return save(fig, out_dir, stem)


def wrap(text: str, width: int) -> str:
    """Wrap ``text`` at word boundaries to lines of at most ``width`` characters."""
    import textwrap
    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))


def grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    """(rows, cols) for ``n`` panels."""
    cols = max(1, min(max_cols, n))
    return math.ceil(max(n, 1) / cols), cols


def panel_cells(tasks: list, families: list, max_cols: int) -> tuple[int, int, list[tuple]]:
    """Small multiples: ``(nrows, ncols, [(i, j, task, family), ...])``, one cell per task and family.

    With one task the families wrap into at most ``max_cols`` columns, filled row by row; with several,
    row ``i`` is ``families[i]`` and column ``j`` is ``tasks[j]`` (the figure grows down, not across, so it
    keeps its width in a README; a row compares one family across tasks).
    """
    if len(tasks) == 1:
        nrows, ncols = grid(len(families), max_cols)
        return nrows, ncols, [(k // ncols, k % ncols, tasks[0], f) for k, f in enumerate(families)]
    return len(families), len(tasks), [(i, j, t, f) for i, f in enumerate(families) for j, t in enumerate(tasks)]

def panel_legend(ax, title: str, width_in: float, handles=None, labels=None) -> None:
    """A small-multiples panel's own legend above the axes, with a bold ``title`` (e.g. the agent family), in at
    most two columns and as many as fit in ``width_in`` inches; ``handles``/``labels``: the lines labelled in
    ``ax`` unless given."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, title=title, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False,
              ncol=min(2, legend_columns(labels, width_in)), alignment="left", borderaxespad=0.2,
              columnspacing=1.0, handlelength=2.6, title_fontproperties={"size": 10, "weight": "bold"})


def hide_unused(axes, cells) -> None:
    """Hide the grid's axes that hold no panel (``cells``: ``(i, j, ...)`` as :func:`panel_cells` gives)."""
    used = {(c[0], c[1]) for c in cells}
    for i in range(axes.shape[0]):
        for j in range(axes.shape[1]):
            if (i, j) not in used:
                axes[i, j].set_visible(False)


def is_lowest(cells, i: int, j: int) -> bool:
    """Whether panel ``(i, j)`` is the lowest used panel of its column (it carries the x label and ticks)."""
    return (i + 1, j) not in {(c[0], c[1]) for c in cells}


# ------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------
def to_markdown(df: pd.DataFrame, title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (floats with 4 significant digits); no extra dependency."""
    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = [f"## {title}", ""] if title else []
    if df.empty:
        return "\n".join(lines + ["(no rows)", ""])
    cols = [str(c) for c in df.columns]
    lines += ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, tables_dir: Path, stem: str, title: str | None = None) -> list[Path]:
    """Write ``stem.csv`` and ``stem.md`` to ``tables_dir``."""
    tables_dir = Path(tables_dir)
    tables_dir.mkdir(parents=True, exist_ok=True)
    csv, md = tables_dir / f"{stem}.csv", tables_dir / f"{stem}.md"
    df.to_csv(csv, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    md.write_text(to_markdown(df, title))
    return [csv, md]
