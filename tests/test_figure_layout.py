"""Figure layout: one frozen, snapped layout per figure (byte-identical PDFs in every process), and the
small multiples by agent family that keep the learning curves readable with every registered agent.

Every input is a small hand-made table; nothing here reads the committed runs.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from matplotlib.layout_engine import PlaceHolderLayoutEngine

from analysis import agents as A
from analysis import style
from analysis.figures import aggregates, anchors, curves, model_quality, terms


def _term_table(agents=("sac", "avem-gen-elbo-learned-plan", "avem-gen-ml-learned-plan"), names=terms.OBJECTIVE_TERMS,
                tasks=("cartpole-swingup-pos",)) -> pd.DataFrame:
    """Binned-terms rows (``terms.TERM_COLUMNS``) for every term of ``names`` (default: the objective's), every task
    of ``tasks`` (default: one) and every agent of ``agents`` (default: a few)."""
    rows = []
    for task in tasks:
        for k, agent in enumerate(agents):
            for i, term in enumerate(names):
                for step in np.linspace(1000.0, 30000.0, 30):
                    m = (k + 1) * np.log1p(step) / (i + 1)
                    rows.append({"task": task, "agent": agent, "term": term, "step": step,
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


# ---- small multiples by agent family ------------------------------------------------------------
SIXTEEN = ["random", "sac", "sb3-sac", "sac-state", "planet", "dreamer", "avem-disc-uniform", "avem-disc-learned",
           *[f"avem-gen-{m}-{p}-{q}" for m in ("ml", "elbo") for p in ("uniform", "learned") for q in ("plan", "noplan")]]


def _eval_table(agents, tasks=("cartpole-swingup-pos",)) -> pd.DataFrame:
    """Hand-made evaluation rows: 2 seeds x 3 evaluation steps x 2 episodes per agent and task."""
    rows = [{"task": task, "agent": agent, "seed": seed, "obs": "pos", "step": step, "episode": ep,
             "return": 40.0 * k + step / 1000.0 + seed + ep, "length": 1000}
            for task in tasks for k, agent in enumerate(agents) for seed in (0, 1)
            for step in (10_000, 20_000, 30_000) for ep in (0, 1)]
    return pd.DataFrame(rows)


def _captured(monkeypatch) -> list:
    """Make ``style.save`` keep each figure (still saving it) so a test can look inside."""
    figs, real_save = [], style.save

    def keep(fig, out_dir, stem):
        figs.append(fig)
        files = real_save(fig, out_dir, stem)
        return files
    monkeypatch.setattr(style, "save", keep)
    return figs


def _panels(fig) -> dict[str, list[str]]:
    """``{panel legend title: [line labels]}`` of the figure's visible axes that have a legend."""
    out = {}
    for ax in fig.get_axes():
        leg = ax.get_legend()
        if ax.get_visible() and leg is not None:
            out[leg.get_title().get_text()] = [t.get_text() for t in leg.get_texts()]
    return out


def test_every_registered_agent_has_a_family_and_a_label_unique_in_it():
    from avem.agents import registry
    names = registry.names()
    assert sorted(names) == sorted(SIXTEEN), "SIXTEEN is the registry"
    assert "other" not in {A.family(n) for n in names}
    groups = dict(A.by_family(names))
    assert list(groups) == [f for f in A.FAMILIES if f in groups] and len(groups) == 5
    assert groups["generative AVEM, planning"] == A.order(n for n in names if n.startswith("avem-gen-")
                                                          and n.endswith("-plan"))
    assert groups["model-based baselines"] == ["planet", "dreamer"]
    for fam, members in groups.items():
        assert len({A.short_label(a) for a in members}) == len(members), fam
    assert A.short_label("avem-gen-ml-learned-plan") == "ml-learned"
    assert A.family_title("generative AVEM, no planning") == "generative AVEM, no planning (avem-gen-*-*-noplan)"
    assert A.family("my-new-agent") == "other" and A.short_label("my-new-agent") == "my-new-agent"


def test_panel_cells_wrap_one_task_and_grow_down_with_several():
    assert style.panel_cells(["t"], list("abcde"), 2) == (3, 2, [(0, 0, "t", "a"), (0, 1, "t", "b"), (1, 0, "t", "c"),
                                                                 (1, 1, "t", "d"), (2, 0, "t", "e")])
    n, m, cells = style.panel_cells(["t1", "t2"], ["a", "b", "c"], 2)
    assert (n, m) == (3, 2) and cells[3] == (1, 1, "t2", "b")  # row = family, column = task


def test_curves_with_sixteen_agents_are_one_panel_per_family_on_shared_axes(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    runs = pd.DataFrame({"task": ["cartpole-swingup-pos"], "agent": ["planet"], "seed": [1], "status": ["failed"],
                         "note": ["non-finite loss"]})
    entry = curves.figure(_eval_table(SIXTEEN), anchors.load(None), tmp_path, tmp_path / "t", 0, 20, None, runs)
    (fig,) = figs
    panels = _panels(fig)
    expected = {A.family_title(f, "\n"): [A.short_label(a) for a in m] for f, m in A.by_family(SIXTEEN)}
    assert panels == expected
    assert max(len(v) for v in panels.values()) <= 4
    shown = [ax for ax in fig.get_axes() if ax.get_visible() and ax.get_legend() is not None]
    assert {ax.get_ylim() for ax in shown} == {(0.0, 1000.0)}
    assert len({ax.get_xlim() for ax in shown}) == 1
    planet_panel = next(ax for ax in shown if ax.get_legend().get_title().get_text() == "model-based baselines")
    assert any(line.get_marker() == "X" for line in planet_panel.get_lines())  # the failed run, in its family
    assert fig.get_figwidth() <= 9.0, "two columns of panels: readable at the README's width"
    assert "one panel per agent family" in entry["caption"] and "one y axis" in entry["caption"]
    assert "avem-gen-ml-learned-plan" in entry["caption"]
    assert (tmp_path / "curves.png").exists() and (tmp_path / "t" / "curves.csv").exists()


def test_curves_with_two_tasks_put_families_in_rows_and_tasks_in_columns(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    agents = ["sac", "avem-disc-uniform", "avem-gen-ml-learned-plan"]
    ev = _eval_table(agents, ("cartpole-swingup-pos", "reacher-easy-pos"))
    ev = ev[(ev["task"] == "cartpole-swingup-pos") | (ev["agent"] != "avem-disc-uniform")]  # not run on reacher
    curves.figure(ev, anchors.load(None), tmp_path, tmp_path / "t", 0, 20, None)
    (fig,) = figs
    grid = [ax for ax in fig.get_axes() if ax.get_visible()]
    assert len(grid) == 6
    titles = [ax.get_legend().get_title().get_text() for ax in grid]
    assert titles[:2] == ["baselines\non cartpole-swingup-pos", "baselines\non reacher-easy-pos"]
    assert [len(ax.get_lines()) for ax in grid] == [1, 1, 1, 0, 1, 1]
    assert grid[3].texts[0].get_text() == "no run of this family\non this task"
    assert fig.get_figwidth() <= 9.0


def test_profiles_with_sixteen_agents_are_one_panel_per_family(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    taus = aggregates.TAUS
    prof = pd.DataFrame([{"budget": 1000, "agent": a, "tau": t, "fraction": 1.0 - t, "ci_low": 0.9 - t,
                          "ci_high": 1.0} for a in SIXTEEN for t in taus], columns=aggregates.PROFILE_COLUMNS)
    aggregates.profile_figure(prof, 1000, tmp_path, None)
    (fig,) = figs
    panels = _panels(fig)
    assert panels == {A.family_title(f, "\n"): [A.short_label(a) for a in m] for f, m in A.by_family(SIXTEEN)}
    shown = [ax for ax in fig.get_axes() if ax.get_visible()]
    assert {ax.get_ylim() for ax in shown} == {(0.0, 1.02)} and {ax.get_xlim() for ax in shown} == {(0.0, 1.0)}


def test_term_panels_have_a_column_per_family_and_one_y_axis_per_row(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    table = _term_table(tuple(a for a in SIXTEEN if a != "random"))
    table = table[~table["agent"].isin(["sac", "sb3-sac", "sac-state"]) | (table["term"] == "kl_a")]  # as reported
    terms.line_panels(table, list(terms.OBJECTIVE_TERMS), terms.OBJECTIVE_TERMS, "terms", "terms", tmp_path, None)
    (fig,) = figs
    panels = _panels(fig)
    assert list(panels) == [A.family_title(f, "\n") for f, _ in A.by_family(SIXTEEN)]
    assert panels["baselines"] == ["sac", "sb3-sac", "sac-state (ORACLE, full state)"]
    grid = np.array(fig.get_axes()).reshape(len(terms.OBJECTIVE_TERMS), 5)
    for row in grid:
        assert len({ax.get_ylim() for ax in row}) == 1
    assert max(len(ax.get_lines()) for ax in grid.flat) <= 4
    kl_z_baselines = grid[0, 0]
    assert not kl_z_baselines.get_lines() and kl_z_baselines.texts[0].get_text() == "not reported"


def _rows(fig) -> list[tuple[str | None, str]]:
    """``[(task heading above it, y label)]`` of every visible panel that carries a y label, top to bottom (the
    heading: the text of the nearest axis-less heading axes above; None when there is none)."""
    marks = [(ax.get_position().y0, ax) for ax in fig.get_axes() if ax.get_visible()]
    out, task = [], None
    for _, ax in sorted(marks, key=lambda m: -m[0]):
        if not ax.axison and ax.texts:
            task = ax.texts[0].get_text()
        elif ax.get_ylabel():
            out.append((task, ax.get_ylabel()))
    return out


@pytest.mark.parametrize("names", ["objective terms", "model quality"])
def test_term_panels_with_two_tasks_keep_family_columns_and_a_row_per_task_and_term(tmp_path, monkeypatch, names):
    """Two tasks and every registered agent: at most 4 family columns within 9 in; the tasks' blocks of term rows
    go down the figure, each under its task's name (model quality: the agents with a world model, log y)."""
    figs = _captured(monkeypatch)
    tasks = ("cartpole-swingup-pos", "reacher-easy-pos")
    if names == "objective terms":
        labels, agents, kw = terms.OBJECTIVE_TERMS, SIXTEEN, {}
    else:
        labels = {n: v[2] for n, v in model_quality.RATIOS.items()}
        agents, kw = [a for a in SIXTEEN if a.startswith("avem-gen-") or a in A.MODEL_BASED], {"reference": 1.0,
                                                                                            "log_y": True}
    table = _term_table(agents, labels, tasks)
    terms.line_panels(table, list(labels), labels, "title", "stem", tmp_path, None, **kw)
    (fig,) = figs
    assert fig.get_figwidth() <= 9.0
    shown = [ax for ax in fig.get_axes() if ax.get_visible() and ax.axison]
    assert len({ax.get_position().x0 for ax in shown}) <= 4
    assert len(shown) == len(tasks) * len(labels) * len(A.by_family(agents))  # every family on every task's rows
    rows = _rows(fig)
    wanted = [(task, style.wrap(labels[n], 22)) for task in tasks for n in labels]
    assert set(rows) == set(wanted) and len(rows) % len(wanted) == 0  # once per block of family columns
    assert {" ".join(title.split()) for title in _panels(fig)} == {A.family_title(f) for f, _ in A.by_family(agents)}
    assert max(len(ax.get_lines()) for ax in shown) <= 4 + 1  # a family's lines (+ the reference line)


def test_anchors_with_sixteen_agents_label_every_row_and_have_no_legend(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    sources = ("Laskin et al. 2020 (CURL), Table 1", "danijar/dreamerv3 scores/dmc_vision-curl.json.gz (10 seeds)")
    published = pd.DataFrame([{"task": "cartpole-swingup", "agent": agent, "observation": obs, "steps": steps,
                               "mean": 100.0 * k + 10, "sd": 20.0, "source": src}
                              for src in sources for k, (agent, obs) in enumerate([
                                  ("SAC-state", "full state"), ("PlaNet", "pixels"), ("Dreamer", "pixels"),
                                  ("CURL", "pixels"), ("DrQ", "pixels"), ("D4PG", "proprio (full state)")])
                              for steps in (100_000, 500_000)], columns=anchors.ANCHOR_COLUMNS)
    ev = _eval_table(SIXTEEN, ("cartpole-swingup-pos", "reacher-easy-pos"))
    entry = anchors.figure(ev, published, [20_000], tmp_path, tmp_path / "t", 0, 20, None, "3 seeds")
    (fig,) = figs
    assert not fig.legends and not any(s.legends for s in style._subfigures(fig))
    assert not any(ax.get_legend() for ax in fig.get_axes())
    assert fig.get_figwidth() <= 9.0
    grid = np.array(fig.get_axes()).reshape(2, 3)  # tasks x budgets (20k, 100k, 500k)
    ours = [A.label(a) for _, members in A.by_family(SIXTEEN) for a in members]
    theirs = [anchors.row_label(r) for r in published.drop_duplicates(["agent", "source"]).itertuples()]
    assert len(set(theirs)) == 12
    for row, marks in zip(grid, (theirs, ["no published anchor"])):
        assert [t.get_text() for t in row[0].get_yticklabels()] == ours + marks  # every row, on the left
        assert not any(t.get_visible() for ax in row[1:] for t in ax.get_yticklabels())
        assert len({ax.get_ylim() for ax in row}) == 1
    for ax in grid[:, 1:].flat:
        assert "no run of this study\nreached" in ax.texts[0].get_text()
    assert len([ln for ln in grid[0, 2].get_lines() if ln.get_marker() not in ("None", "|")]) == 12
    assert "below it, published anchors" in entry["caption"]
