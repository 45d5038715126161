"""analysis collect + figures end to end on synthetic run directories (no training).

The synthetic study has baselines and AVEM variants (so every ablation pair exists), two tasks,
three seeds, one MISSING run, one UNREADABLE run and one still RUNNING; it checks that every
figure and table is written, that those runs are reported (never dropped), and that the
statistics regenerate identically with the same bootstrap seed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import agents as A
from analysis import tidy
from analysis.figures import ablations
from analysis.scores import at_budget, matrix
from avem.train import rundir

AGENTS = ["random", "sac", "sac-state", "avem-disc-uniform", "avem-gen-elbo-uniform-noplan",
          "avem-gen-elbo-uniform-plan", "avem-gen-elbo-learned-plan", "avem-gen-ml-learned-plan",
          "avem-gen-ml-learned-plan.noig"]  # a study variant: ml.control_info_gain=false in its config
TASKS = ["cartpole-swingup-distract", "finger-spin-pos"]
SEEDS = [0, 1, 2]
MISSING = ("cartpole-swingup-distract", "avem-gen-ml-learned-plan", 2)
FAILED = ("finger-spin-pos", "sac", 1)
RUNNING = ("finger-spin-pos", "avem-gen-elbo-uniform-plan", 0)
DIVERGED = ("finger-spin-pos", "avem-disc-uniform", 2)
ANCHORS = Path(__file__).resolve().parents[1] / "workflows" / "config" / "anchors.csv"  # from shared/anchors
STEPS, EVAL_EVERY, EPISODE = 500_000, 50_000, 10_000


def _skill(agent: str) -> float:
    return {"random": 0.05, "sac": 0.5, "sac-state": 0.85}.get(agent, 0.3 + 0.08 * AGENTS.index(agent) / 2)


def write_run(root: Path, task: str, agent: str, seed: int, steps: int = STEPS, status: str = "finished",
              probe: bool = True) -> Path:
    """One synthetic run directory in the layout ``avem train`` writes."""
    rng = np.random.default_rng([AGENTS.index(agent), TASKS.index(task) if task in TASKS else 9, seed])
    d = rundir.run_path(root, task, agent, seed)
    d.mkdir(parents=True)
    ev = []
    for step in range(0, steps + 1, EVAL_EVERY):
        level = 1000 * _skill(agent) * (1 - np.exp(-step / 150_000))
        for e in range(2):
            ev.append({"task": task, "agent": agent, "seed": seed, "obs": task.rsplit("-", 1)[1], "step": step,
                       "episode": e, "return": float(np.clip(level + rng.normal(0, 60), 0, 1000)), "length": 1000})
    pd.DataFrame(ev).to_csv(d / "eval.csv", index=False)
    met = []
    for step in range(EPISODE, steps + 1, EPISODE):
        row = {"step": step, "episode": step // EPISODE, "train_return": rng.uniform(0, 900), "steps_per_second": 500.0}
        if agent != "random":
            row["train/critic_loss"] = 1.0 / (1 + step / 1e5) + rng.normal(0, 0.05)
        if agent.startswith("avem"):
            row["train/kl_a"] = 0.5 + rng.normal(0, 0.05)
            row["train/reward"] = step / steps + rng.normal(0, 0.05)
        if agent.startswith("avem-gen"):
            ml = "-ml-" in agent
            row["train/kl_z"] = 3.0 - step / steps + rng.normal(0, 0.1)
            row["train/cll"] = (5.0 if ml else 8.0) * step / steps + rng.normal(0, 0.2)
            row["train/mll"] = (4.0 if ml else 6.0) * step / steps + rng.normal(0, 0.2)
            row["train/info_gain"] = row["train/cll"] - row["train/mll"]
            for key, base in (("obs", 0.04), ("reward", 0.5)):
                row[f"train/openloop_{key}_err_h5_baseline"] = base
                row[f"train/openloop_{key}_err_h5"] = base * (2.0 - step / steps) + rng.normal(0, 0.01)
        met.append(row)
    pd.DataFrame(met).to_csv(d / "metrics.csv", index=False)
    sw = A.switches_from_name(agent)
    agent_cfg = {"hidden": 32} | ({} if sw is None else {"model": sw.model, "marginal_likelihood": sw.marginal_likelihood,
                                                         "action_prior": sw.action_prior, "planning": sw.planning})
    if agent.endswith(".noig"):
        agent_cfg["ml"] = {"control_info_gain": False}
    (d / "config.yaml").write_text(yaml.safe_dump({"run": {"task": task, "agent": agent, "seed": seed},
                                                   "agent": agent_cfg, "provenance": {"commit": "x"}}))
    (d / "run.json").write_text(json.dumps({"status": status, "mlflow_run_id": "abc"}))
    (d / "checkpoint.pt").write_bytes(b"")
    if probe:
        groups = ["velocity", "position"] + (["distractor"] if task.endswith("distract") else [])
        rows = [{"task": task, "agent": agent, "seed": seed, "target_group": g, "n_samples": 500,
                 "r2": np.nan if agent == "random" else float(rng.uniform(0.2, 0.99)),
                 "status": "not_applicable" if agent == "random" else "ok"} for g in groups]
        pd.DataFrame(rows).to_csv(d / "probe.csv", index=False)
    return d


def make_study(root: Path) -> tuple[Path, Path]:
    """Synthetic runs under ``root/runs`` and ``root/expected.csv``; returns both paths."""
    runs = root / "runs"
    expected = [{"task": t, "agent": a, "seed": s} for t in TASKS for a in AGENTS for s in SEEDS]
    for r in expected:
        key = (r["task"], r["agent"], r["seed"])
        if key == MISSING:
            continue
        if key == RUNNING:
            write_run(runs, *key, steps=300_000, status="running")
            continue
        if key == DIVERGED:
            d = write_run(runs, *key, steps=200_000, status="failed")
            (d / "run.json").write_text(json.dumps({"status": "failed", "reason": "non-finite critic_loss at step 203000"}))
            continue
        d = write_run(runs, *key)
        if key == FAILED:
            (d / "eval.csv").write_bytes(b"\x00\xff garbage,\n\"unterminated")
    write_run(runs, "finger-spin-pos", "sac", 7)  # present but not expected: reported, not collected
    pd.DataFrame(expected).to_csv(root / "expected.csv", index=False)
    return runs, root / "expected.csv"


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    runs, expected = make_study(root)
    tables, figs = root / "tables", root / "figures"
    r = _cli("collect", "--runs", runs, "--expected", expected, "--out", tables)
    assert r.returncode == 0, r.stderr
    assert "not in the expected list" in r.stderr and "finger-spin-pos/sac/seed7" in r.stderr
    r = _cli("figures", "--tables", tables, "--out", figs, "--budgets", 100000, 500000,
             "--anchors", ANCHORS, "--seed", 0, "--reps", 200)
    assert r.returncode == 0, r.stderr
    return root, tables, figs


FIGURES = ["curves", "aggregates_100k", "profiles_100k", "aggregates_500k", "profiles_500k", "ablations_100k",
           "ablations_500k", "terms", "losses", "probes", "anchors", "model_quality"]
TABLES = ["missing_runs", "curves", "aggregates", "profiles", "budget_scores", "ablations", "terms",
          "terms_final", "losses", "probe_summary", "anchors", "model_quality"]


def test_collect_reports_every_expected_run(study):
    _, tables, _ = study
    runs = pd.read_csv(tables / "runs.csv")
    assert len(runs) == len(TASKS) * len(AGENTS) * len(SEEDS)
    assert list(runs.columns[:6]) == ["task", "agent", "seed", "status", "final_step", "final_return"]
    status = {(r.task, r.agent, r.seed): r.status for r in runs.itertuples()}
    assert status[MISSING] == "missing" and status[FAILED] == "failed (unreadable)"
    assert status[RUNNING] == "running (incomplete)" and status[DIVERGED] == "failed"
    assert sum(s == "finished" for s in status.values()) == len(runs) - 4
    ev = pd.read_csv(tables / "eval.csv")
    assert not ((ev["task"] == FAILED[0]) & (ev["agent"] == FAILED[1]) & (ev["seed"] == FAILED[2])).any()
    assert (ev["seed"] != 7).all()
    met = pd.read_csv(tables / "metrics.csv")
    assert list(met.columns[:4]) == ["task", "agent", "seed", "step"] and "train/kl_z" in met.columns
    probe = pd.read_csv(tables / "probe.csv")
    assert list(probe.columns) == list(tidy.PROBE_COLUMNS) and set(probe["status"]) == {"ok", "not_applicable"}
    gen = runs[runs["agent"] == "avem-gen-ml-learned-plan"].iloc[0]
    assert gen["switch_source"] == "config" and gen["model"] == "generative"


def test_every_figure_and_table_exists_with_captions(study):
    _, tables, figs = study
    for stem in FIGURES:
        for ext in ("png", "pdf"):
            assert (figs / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"
    for stem in TABLES:
        assert (tables / f"{stem}.csv").exists() and (tables / f"{stem}.md").exists(), stem
    manifest = json.loads((figs / "manifest.json").read_text())
    files = {m["file"] for m in manifest}
    assert files == {f"{s}.{e}" for s in FIGURES for e in ("png", "pdf")}
    captions = {m["file"]: m["caption"] for m in manifest}
    assert all(len(c) > 40 for c in captions.values())
    assert "seeds per agent and task" in captions["curves.png"] and "Laskin et al. 2020" in captions["curves.png"]
    assert "missing" in captions["curves.png"]  # missing/failed runs said in every caption
    # a diverged run is drawn (a cross at its last evaluation) and named with its reason
    assert ("Crosses: runs that failed (diverged) at their last evaluation: finger-spin-pos/avem-disc-uniform/seed2 "
            "at 200k steps (non-finite critic_loss at step 203000)") in captions["curves.png"]


def test_missing_and_failed_runs_are_tabled(study):
    _, tables, _ = study
    miss = pd.read_csv(tables / "missing_runs.csv")
    keys = {(r.task, r.agent, r.seed): r.status for r in miss.itertuples()}
    assert keys == {MISSING: "missing", FAILED: "failed (unreadable)", RUNNING: "running (incomplete)",
                    DIVERGED: "failed"}
    assert "avem-gen-ml-learned-plan" in (tables / "missing_runs.md").read_text()


def test_statistics_tables_content(study):
    _, tables, _ = study
    agg = pd.read_csv(tables / "aggregates.csv")
    a500 = agg[(agg["budget"] == 500000) & (agg["metric"] == "iqm")].set_index("agent")
    assert a500.loc["sac-state", "value"] > a500.loc["random", "value"]
    assert (a500["ci_low"] <= a500["value"]).all() and (a500["value"] <= a500["ci_high"]).all()
    # the running run stopped at 300k: scored at 100k, not at 500k
    scores = pd.read_csv(tables / "budget_scores.csv")
    r = scores[(scores["task"] == RUNNING[0]) & (scores["agent"] == RUNNING[1]) & (scores["seed"] == RUNNING[2])]
    assert list(r["budget"]) == [100000]
    # the diverged run ended at 200k: scored at both budgets by its last evaluation, not left out
    d = scores[(scores["task"] == DIVERGED[0]) & (scores["agent"] == DIVERGED[1]) & (scores["seed"] == DIVERGED[2])]
    assert list(d["budget"]) == [100000, 500000] and d["step"].max() <= 200000
    assert a500.loc[DIVERGED[1], "n_runs_per_task"] == 3
    abl = pd.read_csv(tables / "ablations.csv")
    pairs = set(zip(abl.loc[abl["budget"] == 500000, "switch"], abl.loc[abl["budget"] == 500000, "with_agent"],
                    abl.loc[abl["budget"] == 500000, "without_agent"]))
    assert pairs == {("marginal_likelihood", "avem-gen-ml-learned-plan", "avem-gen-elbo-learned-plan"),
                     ("action_prior", "avem-gen-elbo-learned-plan", "avem-gen-elbo-uniform-plan"),
                     ("model", "avem-gen-elbo-uniform-noplan", "avem-disc-uniform"),
                     ("planning", "avem-gen-elbo-uniform-plan", "avem-gen-elbo-uniform-noplan"),
                     ("control_info_gain", "avem-gen-ml-learned-plan", "avem-gen-ml-learned-plan.noig")}
    assert abl["poi"].dropna().between(0, 1).all() and abl["p_value"].dropna().between(0, 1, inclusive="right").all()
    final = pd.read_csv(tables / "terms_final.csv")
    assert {"kl_z", "kl_a", "cll", "mll", "info_gain", "reward"} <= set(final["term"])


def test_figures_regenerate_identically(study, tmp_path):
    root, tables, figs = study
    copy = tmp_path / "tables"
    copy.mkdir()
    for name in ("eval", "metrics", "runs", "probe"):
        (copy / f"{name}.csv").write_bytes((tables / f"{name}.csv").read_bytes())
    r = _cli("figures", "--tables", copy, "--out", tmp_path / "figs", "--budgets", 100000, 500000,
             "--anchors", ANCHORS, "--seed", 0, "--reps", 200, "--workers", 2)  # the fixture drew them in one
    assert r.returncode == 0, r.stderr
    for stem in TABLES:
        for ext in ("csv", "md"):
            assert (copy / f"{stem}.{ext}").read_bytes() == (tables / f"{stem}.{ext}").read_bytes(), f"{stem}.{ext}"
    assert (tmp_path / "figs" / "manifest.json").read_bytes() == (figs / "manifest.json").read_bytes()
    # Images too, from other processes: no time stamps, and one frozen, snapped layout (style.freeze_layout)
    images = sorted(p.name for p in figs.iterdir() if p.suffix in (".png", ".pdf"))
    assert len(images) == 2 * len(FIGURES)
    for name in images:
        assert (tmp_path / "figs" / name).read_bytes() == (figs / name).read_bytes(), name


def test_no_finished_run_still_gives_every_figure(tmp_path):
    pd.DataFrame([{"task": "cartpole-swingup-pos", "agent": "sac", "seed": 0}]).to_csv(tmp_path / "exp.csv",
                                                                                        index=False)
    assert _cli("collect", "--runs", tmp_path / "runs", "--expected", tmp_path / "exp.csv",
                "--out", tmp_path / "t").returncode == 0
    r = _cli("figures", "--tables", tmp_path / "t", "--out", tmp_path / "f", "--budgets", 1000, "--reps", 10)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    captions = {m["file"]: m["caption"] for m in manifest}
    assert set(captions) >= {"curves.png", "aggregates_1k.pdf", "ablations_1k.png", "probes.png", "anchors.png"}
    assert "skipped" in captions["aggregates_1k.png"] and "No run reached 1000" in captions["aggregates_1k.png"]
    agg = pd.read_csv(tmp_path / "t" / "aggregates.csv")
    assert agg["note"].tolist() == ["no run reached 1000 simulator steps"]
    assert pd.read_csv(tmp_path / "t" / "missing_runs.csv")["status"].tolist() == ["missing"]
    r = _cli("figures", "--tables", tmp_path / "nowhere", "--out", tmp_path / "f2")
    assert r.returncode == 2 and "collect" in r.stderr


def test_colours_are_a_function_of_the_name_only():
    assert A.colour("avem-gen-ml-learned-plan") == A.colour("avem-gen-ml-learned-plan")
    variants = [f"avem-gen-{m}-{p}-{q}" for m in ("ml", "elbo") for p in ("uniform", "learned")
                for q in ("plan", "noplan")] + ["avem-disc-uniform", "avem-disc-learned"]
    assert len({(A.colour(v), A.linestyle(v)) for v in variants}) == len(variants)
    assert A.order(["avem-gen-ml-learned-plan", "sac", "random", "sac-state"])[:3] == ["random", "sac", "sac-state"]
    assert "ORACLE" in A.label("sac-state")


def test_every_registered_agent_has_its_own_look():
    from avem.agents import registry
    names = registry.names()
    looks = {(A.colour(n), A.linestyle(n), A.marker(n)) for n in names}
    assert len(looks) == len(names)
    assert len({(A.colour(n), A.linestyle(n)) for n in names}) == len(names)  # lines alone tell them apart


def test_pairs_respect_config_over_name():
    runs = pd.DataFrame([{"agent": "avem-gen-ml-learned-plan", "model": "generative", "marginal_likelihood": False,
                          "action_prior": "learned", "planning": True, "switch_source": "config"}])
    sw = ablations.switch_table(runs, ["avem-gen-ml-learned-plan", "avem-gen-elbo-learned-plan"])
    assert sw["avem-gen-ml-learned-plan"].marginal_likelihood is False  # config wins over the name
    assert ablations.pairs(sw) == []  # identical switches: no pair


def test_information_gain_pair_is_a_variant_against_its_registered_agent():
    """A study variant NAME.TAG pairs only with NAME, on the one switch its config changes."""
    nested = {"model": "generative", "marginal_likelihood": True, "action_prior": "learned", "planning": True,
              "ml": {"control_info_gain": False}}
    assert A.switches_from_config(nested).control_info_gain is False
    assert A.switches_from_config({**nested, "planning": False}).control_info_gain is True  # nothing to drop
    assert A.switches_from_config({**nested, "ml": {}}).control_info_gain is True  # older configs: the default
    row = {"model": "generative", "marginal_likelihood": True, "action_prior": "learned", "planning": True,
           "switch_source": "config"}
    runs = pd.DataFrame([{**row, "agent": "avem-gen-ml-learned-plan", "control_info_gain": True},
                         {**row, "agent": "avem-gen-ml-learned-plan.noig", "control_info_gain": False},
                         {**row, "agent": "avem-gen-ml-learned-plan.h10", "control_info_gain": True},
                         {**row, "agent": "avem-gen-elbo-learned-plan", "marginal_likelihood": False,
                          "control_info_gain": True}])
    sw = ablations.switch_table(runs, list(runs["agent"]))
    assert ablations.pairs(sw) == [("marginal_likelihood", "avem-gen-ml-learned-plan", "avem-gen-elbo-learned-plan"),
                                   ("control_info_gain", "avem-gen-ml-learned-plan", "avem-gen-ml-learned-plan.noig"),
                                   # switches equal to its agent's: the variant's own panel, against that agent only
                                   ("study_variant", "avem-gen-ml-learned-plan.h10", "avem-gen-ml-learned-plan")]
    assert A.family("avem-gen-ml-learned-plan.noig") == A.family("avem-gen-ml-learned-plan")
    assert A.colour("avem-gen-ml-learned-plan.noig") == A.colour("avem-gen-ml-learned-plan")
    assert A.linestyle("avem-gen-ml-learned-plan.noig") != A.linestyle("avem-gen-ml-learned-plan")
    panel = ["avem-gen-ml-learned-plan", "avem-gen-ml-learned-plan.noig", "avem-gen-ml-learned-plan.h10"]
    styles = [A.linestyle(a, panel) for a in panel]
    assert len({str(s) for s in styles}) == 3  # two variants of one agent in one panel: told apart by their lines
    assert styles[2] == A.linestyle("avem-gen-ml-learned-plan.h10") == "-."  # h10 sorts first; alone: dash-dot
    assert A.short_label("avem-gen-ml-learned-plan.noig") == "ml-learned.noig"
    assert A.order(["avem-gen-ml-learned-plan.noig", "avem-gen-elbo-learned-plan", "avem-gen-ml-learned-plan"])[-2:] \
        == ["avem-gen-ml-learned-plan", "avem-gen-ml-learned-plan.noig"]


def test_two_variants_one_setting_apart_pair_on_that_setting():
    """``.beta01-noig`` = ``.beta01`` + the information-gain switch: paired in that switch's panel, ``.beta01``
    as "with"; ``.beta01-postig`` = ``.beta01`` + a non-switch setting: ``study_variant``, the extra setting "with";
    variants with as many settings as each other (``.beta01-noig`` and ``.beta01-postig``), of different agents, or
    without a set column do not pair."""
    from avem.study import AgentEntry
    full, elbo = "avem-gen-ml-learned-plan", "avem-gen-elbo-learned-plan"
    sets = {f"{full}.beta01": {"ml.beta_ml_end": 0.1},
            f"{full}.beta01-noig": {"ml.beta_ml_end": 0.1, "ml.control_info_gain": False},
            f"{full}.beta01-postig": {"ml.beta_ml_end": 0.1, "planner.plan_info_gain_estimator": "posterior"},
            f"{elbo}.h10": {"planner.plan_horizon": 10}}
    text = {a: AgentEntry(a, s).set_text for a, s in sets.items()}
    assert text[f"{full}.beta01-noig"] == "ml.beta_ml_end=0.1; ml.control_info_gain=false"
    assert A.parse_set(text[f"{full}.beta01-noig"]) == {"ml.beta_ml_end": "0.1", "ml.control_info_gain": "false"}
    assert A.parse_set("") == {} and A.parse_set(float("nan")) == {}
    assert A.parse_set(AgentEntry("x.t", {"b": "p; q", "a": 1}).set_text) == {"a": "1", "b": "p; q"}
    row = {"model": "generative", "marginal_likelihood": True, "action_prior": "learned", "planning": True,
           "switch_source": "config", "control_info_gain": True}
    runs = pd.DataFrame([{**row, "agent": full, "set": ""},
                         *({**row, "agent": a, "set": t, "marginal_likelihood": a.startswith(full),
                            "control_info_gain": not a.endswith("noig")} for a, t in text.items())])
    agents = list(runs["agent"])
    sw, st = ablations.switch_table(runs, agents), ablations.set_table(runs, agents)
    got = ablations.pairs(sw, st)
    new = [p for p in got if A.is_variant(p[1]) and A.is_variant(p[2])]
    assert new == [("control_info_gain", f"{full}.beta01", f"{full}.beta01-noig"),
                   ("study_variant", f"{full}.beta01-postig", f"{full}.beta01")]
    assert ablations.pairs(sw) == [p for p in got if p not in new]  # without sets: the pairs of before
    assert ablations.set_table(runs.drop(columns="set"), agents) == {}


def test_budget_uses_last_eval_at_or_below_and_rectangular_matrix():
    ev = pd.DataFrame({"task": "t-a-pos", "agent": "x", "seed": [0, 0, 0, 1, 1],
                       "step": [0, 90, 120, 0, 80], "return": [0.0, 500.0, 900.0, 0.0, 400.0]})
    s = at_budget(ev, 100)
    assert list(s["seed"]) == [0] and s["score"].iloc[0] == 0.5  # seed 1 never reached 100
    s = at_budget(ev, 100, failed=frozenset({("t-a-pos", "x", 1)}))  # seed 1 diverged after 80: scored there
    assert list(s["seed"]) == [0, 1] and list(s["step"]) == [90, 80] and list(s["score"]) == [0.5, 0.4]
    ev2 = pd.concat([ev, ev.assign(task="t-b-pos")]).reset_index(drop=True)
    ev2 = ev2[~((ev2["task"] == "t-b-pos") & (ev2["seed"] == 1))]
    m, note = matrix(at_budget(ev2, 80), "x", ["t-a-pos", "t-b-pos"])
    assert m.shape == (1, 2) and note == "x: set aside t-a-pos seeds [1]"


def test_probe_notes_name_absent_targets_once_per_group_and_the_unprobed_agents():
    from analysis.figures import probes
    rows = [("t", a, 0, g, s) for a in ("avem-disc-uniform", "sac") for g, s in
            (("velocity", "ok"), ("distractor", "no_target"))]
    rows += [("u", "sac", 0, "position", "no_target"), ("u", "avem-disc-uniform", 0, "position", "ok")]
    probe = pd.DataFrame(rows, columns=["task", "agent", "seed", "target_group", "status"])
    runs = pd.DataFrame([("t", a, 0, "finished") for a in ("avem-disc-uniform", "sac", "random", "sac-state")],
                        columns=["task", "agent", "seed", "status"])
    assert probes._notes(probe, runs) == [
        "no distractor panel: no probed run's env has distractor dims",
        "position target absent from the env the agent saw: sac",
        "2 finished run(s) without probe.csv (random, sac-state)"]
