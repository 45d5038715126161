"""Figure layout: one frozen, snapped layout per figure (byte-identical PDFs in every process), and the
small multiples by agent family that keep the learning curves readable with every registered agent.

Every input is a small hand-made table; nothing here reads the committed runs.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from matplotlib.layout_engine import PlaceHolderLayoutEngine

from analysis import style
from analysis.figures import curves, terms


def _term_table(agents=("sac", "avem-gen-elbo-learned-plan", "avem-gen-ml-learned-plan")) -> pd.DataFrame:
    """Binned-terms rows (``terms.TERM_COLUMNS``) for every objective term, one task, a few agents."""
    rows = []
    for k, agent in enumerate(agents):
        for i, term in enumerate(terms.OBJECTIVE_TERMS):
            for step in np.linspace(1000.0, 30000.0, 30):
                m = (k + 1) * np.log1p(step) / (i + 1)
                rows.append({"task": "cartpole-swingup-pos", "agent": agent, "term": term, "step": step,
                             "n_seeds": 3, "mean": m, "ci_low": m - 0.3, "ci_high": m + 0.3})
    return pd.DataFrame(rows, columns=terms.TERM_COLUMNS)


def test_snap_maps_nearby_floats_to_one_grid_value_and_never_minus_zero():
    x = 0.3712345678
    jittered = [x, np.nextafter(x, 1.0), np.nextafter(np.nextafter(x, 0.0), 0.0)]
    snapped = style.snap(jittered)
    assert len(set(snapped.tolist())) == 1
    assert snapped[0] / style.LAYOUT_GRID == round(snapped[0] / style.LAYOUT_GRID)
    assert abs(snapped[0] - x) <= style.LAYOUT_GRID / 2
    zero = style.snap([-1e-300])[0]
    assert zero == 0.0 and np.copysign(1.0, zero) == 1.0


def test_freeze_layout_leaves_snapped_boxes_and_no_engine():
    style.setup()
    frame = style.Frame(6.0, 3.0, ["a", "b"], "a note")
    axes = frame.main.subplots(2, 2)
    for ax in axes.flat:
        ax.set_ylabel("a label")
    style.freeze_layout(frame.fig)
    assert isinstance(frame.fig.get_layout_engine(), PlaceHolderLayoutEngine)  # no engine runs at save time
    boxes = [ax.get_position().bounds for ax in frame.fig.get_axes()]
    boxes += [tuple(s.bbox_relative.bounds) for s in style._subfigures(frame.fig)]
    assert len(boxes) == 4 + 3
    for box in boxes:
        assert all(v / style.LAYOUT_GRID == round(v / style.LAYOUT_GRID) for v in box), box
    assert all(w > 0.2 for _, _, w, _ in boxes[:4]), "the layout ran before it was frozen"


def test_the_same_figure_gives_the_same_pdf_bytes_every_time(tmp_path):
    """Constrained layout alone gives a few-ulp different layout from one construction to the next (kiwisolver
    follows memory addresses), which the PDF prints; the frozen layout does not."""
    table = _term_table()
    digests = set()
    for i in range(8):
        files = terms.line_panels(table, list(terms.OBJECTIVE_TERMS), terms.OBJECTIVE_TERMS, "terms", "terms",
                                  tmp_path / str(i), "a note")
        digests.add(tuple(hashlib.sha256(f.read_bytes()).hexdigest() for f in files))
    assert len(digests) == 1


def test_failed_points_takes_the_per_run_points_and_marks_each_failed_run_at_its_last_evaluation():
    points = pd.DataFrame({"task": ["t-a-pos"] * 5, "agent": ["sac", "sac", "sac", "sac", "random"],
                           "seed": [1, 1, 0, 0, 1], "step": [20, 10, 10, 20, 10],
                           "return": [5.0, 50.0, 1.0, 2.0, 3.0]})  # out of step order on purpose
    runs = pd.DataFrame({"task": ["t-a-pos"] * 3, "agent": ["sac", "sac", "random"], "seed": [1, 0, 1],
                         "status": ["failed", "finished", "finished"], "note": ["non-finite loss", "", ""]})
    got = curves.failed_points(points, runs)
    assert got.to_dict("records") == [{"task": "t-a-pos", "agent": "sac", "seed": 1, "step": 20, "return": 5.0,
                                       "note": "non-finite loss"}]
    assert curves.failed_points(points.iloc[:0], runs).empty
