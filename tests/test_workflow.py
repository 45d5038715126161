"""The Snakemake workflow: config validation, DAGs, lint, one store under concurrency, and one real
end-to-end run of the CI study (workflows/config/ci.yaml) through every stage to the report.

Every snakemake call runs in a temporary working directory (``--directory``), so nothing lands
in the repository. Bad configs are checked twice: the JSON schema and ``Study.check`` in-process
(fast, every message), and through ``snakemake -n`` (the failure happens at DAG-building time,
before any job runs).
"""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from avem import study as avem_study
from avem.train import rundir
from tests.conftest import SNAKEMAKE, tool_env
from avem.agents import registry

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"
CONFIG_DIR = ROOT / "workflows" / "config"
SCHEMA = CONFIG_DIR / "schema.yaml"
FULL, QUICK, CI = (CONFIG_DIR / f"{n}.yaml" for n in ("config", "quick", "ci"))

# Snakemake's lint asks every rule for a conda env or container. Justified, not fixed: every rule
# runs this repository's own code (`avem`, `python -m analysis`) in the one environment README's
# set-up command installs from requirements.lock; a per-rule env would have to install the repo.
JUSTIFIED_LINTS = ("Specify a conda environment or container for each rule.",)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def snakemake(workdir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--snakefile", str(SNAKEFILE), "--directory", str(workdir), *args],
                          capture_output=True, text=True, timeout=timeout, env=tool_env())


def write_config(tmp_path: Path, cfg: dict, name: str = "study.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def checked(cfg: dict) -> dict:
    """Schema-validate (filling defaults) as common.smk does."""
    return avem_study.validate_config(cfg, SCHEMA)


def ci_config() -> dict:
    return load(CI)


# ---- the schema and its defaults ---------------------------------------------------------
@pytest.mark.parametrize("path", [FULL, QUICK, CI], ids=lambda p: p.name)
def test_study_configs_are_valid_and_complete(path: Path) -> None:
    cfg = load(path)
    schema = load(SCHEMA)
    assert set(cfg) == set(schema["properties"]), "every study file spells out every key (they are not merged)"
    checked(cfg)


def test_schema_defaults_agree_with_full_config() -> None:
    schema, cfg = load(SCHEMA), load(FULL)
    for key, sub in schema["properties"].items():
        if "default" not in sub:
            continue
        if key == "probe":  # the full study lists its agents; the other defaults must agree
            for k, v in sub["default"].items():
                if k != "agents":
                    assert cfg["probe"][k] == v, f"probe.{k}"
            continue
        assert cfg[key] == sub["default"], f"{key}: config.yaml {cfg[key]!r} != schema default {sub['default']!r}"


def test_full_config_is_the_published_study() -> None:
    cfg = load(FULL)
    assert set(cfg["tasks"]) >= {f"{t}-pos" for t in ("cartpole-swingup", "reacher-easy", "cheetah-run",
                                                      "finger-spin", "ball_in_cup-catch", "walker-walk")}
    avem = {f"avem-disc-{p}" for p in ("uniform", "learned")} | {
        f"avem-gen-{m}-{p}-{q}" for m in ("ml", "elbo") for p in ("uniform", "learned") for q in ("plan", "noplan")}
    assert set(cfg["agents"]) >= avem | {"random", "sac", "sac-state", "planet", "dreamer", "sb3-sac"}
    assert len(cfg["seeds"]) >= 5 and cfg["steps"] >= 500_000 and {100_000, 500_000} <= set(cfg["budgets"])
    assert set(load(QUICK)["agents"]) == set(cfg["agents"]), "the quick study runs every agent"


BAD_SCHEMA = {
    "missing key": (lambda c: c.pop("steps"), "(top level): 'steps' is a required property"),
    "wrong type": (lambda c: c.update(seeds=[0, "one"]), "seeds[1]: 'one' is not of type 'integer'"),
    "misspelled key": (lambda c: c.update(stpes=10),
                       "(top level): Additional properties are not allowed ('stpes' was unexpected)"),
    "negative budget": (lambda c: c.update(steps=-8), "steps: -8 is less than the minimum of 1"),
    "malformed task id": (lambda c: c.update(tasks=["cartpole swingup"]),
                          "tasks[0]: 'cartpole swingup' does not match '^[a-z_]+-[a-z_]+-[a-z]+$'"),
    "unknown agent field": (lambda c: c["agents"].update(sac={"sets": {"hidden": 32}}),
                            "agents.sac: Additional properties are not allowed ('sets' was unexpected)"),
    "nested override": (lambda c: c["agents"].update(sac={"set": {"hidden": {"a": 1}}}),
                        "agents.sac.set.hidden: {'a': 1} is not of type"),
    "duplicate seeds": (lambda c: c.update(seeds=[0, 0]), "seeds: [0, 0] has non-unique elements"),
    "eval without episodes": (lambda c: c.update(eval={"every": 1000}), "eval: 'episodes' is a required property"),
    "agent name with a space": (lambda c: c["agents"].update({"my agent": None}), "agents: 'my agent' does not match"),
    "quoted gres": (lambda c: c["agents"].update(sac={"resources": {"gres": "'gpu:1'"}}),
                    "agents.sac.resources.gres: \"'gpu:1'\" does not match"),
}


@pytest.mark.parametrize("case", list(BAD_SCHEMA))
def test_schema_rejects_bad_config(case: str) -> None:
    mutate, message = BAD_SCHEMA[case]
    cfg = ci_config()
    mutate(cfg)
    with pytest.raises(avem_study.StudyError) as err:
        checked(cfg)
    assert str(err.value) == f"invalid study config: {message}" or message in str(err.value), str(err.value)


# ---- Study.check: what only the registry and the task table know ---------------------------
BAD_STUDY = {
    "unknown task": (lambda c: c.update(tasks=["cartpole-swingup-posx"]),
                     "tasks: 'cartpole-swingup-posx': unknown obs mode 'posx'"),
    "unknown agent": (lambda c: c["agents"].update(sacc=None),
                      "agents.sacc: unknown agent 'sacc'; registered agents:"),
    "invalid switch combination": (lambda c: c["agents"].update({"avem-disc-uniform": {"set": {"planning": True}}}),
                                   "agents.avem-disc-uniform on task 'cartpole-swingup-pos': model='discriminative' "
                                   "conflicts with planning=True"),
    "unknown override": (lambda c: c["agents"].update(sac={"set": {"hiden": 32}}),
                         "agents.sac on task 'cartpole-swingup-pos': unknown key 'hiden' for agent 'sac'"),
    "override of wrong type": (lambda c: c["agents"].update(sac={"set": {"hidden": "big"}}),
                               "agents.sac on task 'cartpole-swingup-pos': ActorCriticConfig.hidden expects int, got 'big'"),
    "budget not a multiple of the action repeat": (
        lambda c: c.update(steps=2004, budgets=[2004]),
        "agents.sac on task 'cartpole-swingup-pos': steps=2004 is not a multiple of the action repeat 8"),
    "budget not an evaluation step": (lambda c: c.update(budgets=[1500]),
                                      "budgets: 1500 is not an evaluation step of agent 'sac'"),
    "probe agent not in the study": (lambda c: c["probe"].update(agents=["dreamer"]),
                                     "probe.agents: 'dreamer' is not one of the study's agents"),
    "reserved override": (lambda c: c["agents"].update(sac={"set": {"experiment": "x"}}),
                          "agents.sac.set: ['experiment'] are set by the study itself"),
    "GPU job on the CPU": (lambda c: c["agents"].update(sac={"resources": {"gres": "gpu:1"}}),
                           "agents.sac: its training jobs ask for a GPU (resources) but would run on the CPU"),
    "bad device": (lambda c: c["agents"].update(sac={"set": {"device": "gpu"}}),
                   "agents.sac on task 'cartpole-swingup-pos': device must be one of cpu, cuda, auto"),
    "variant of an unknown agent": (lambda c: c["agents"].update({"sacc.x": {"set": {"hidden": 32}}}),
                                    "agents.sacc.x: unknown agent 'sacc'"),
    "variant without a set": (lambda c: c["agents"].update({"sac.same": None}),
                              "agents.sac.same: a variant NAME.TAG needs a `set:`"),
    "variant with a bad override": (lambda c: c["agents"].update({"sac.x": {"set": {"hiden": 32}}}),
                                    "agents.sac.x on task 'cartpole-swingup-pos': unknown key 'hiden' for agent 'sac'"),
}


@pytest.mark.parametrize("case", list(BAD_STUDY))
def test_study_check_rejects_bad_entry(case: str) -> None:
    mutate, message = BAD_STUDY[case]
    cfg = ci_config()
    mutate(cfg)
    with pytest.raises(avem_study.StudyError) as err:
        avem_study.Study.from_config(checked(cfg)).check()
    assert message in str(err.value), str(err.value)


def test_study_check_lists_every_problem_once() -> None:
    cfg = ci_config()
    cfg["agents"]["sac"] = {"set": {"hiden": 1}}
    cfg["tasks"].append("reacher-easy-pos")  # the same bad key fails on both tasks: said once
    cfg["budgets"] = [1500]
    with pytest.raises(avem_study.StudyError) as err:
        avem_study.Study.from_config(checked(cfg)).check()
    msg = str(err.value)
    assert msg.count("unknown key 'hiden'") == 1 and "budgets: 1500" in msg, msg
    assert msg.startswith("invalid study config (")


def test_study_expansion() -> None:
    s = avem_study.Study.from_config(checked(ci_config()))
    runs = s.runs()
    assert len(runs) == len(s.tasks) * len(s.agents) * len(s.seeds)
    assert runs[0].path("results/runs") == Path("results/runs/cartpole-swingup-pos/sac/seed0")
    assert {r.agent for r in s.probe_runs()} == {"sac", "avem-gen-ml-learned-plan"}
    args = s.set_args("sac")
    assert args.startswith("--tiny ") and "--set experiment=avem-ci" in args and "--set eval_every=1000" in args
    assert "steps" not in args.replace("seed_steps", "")
    assert avem_study._cli_value(True) == "true" and avem_study._cli_value(None) == "null"
    assert avem_study._cli_value([1, 2]) == "[1, 2]" and avem_study._cli_value(1e-3) == "0.001"


def test_a_variant_trains_its_registered_agent_under_its_own_label(tmp_path: Path) -> None:
    """`NAME.TAG: {set: ...}`: runs under the label's directory, `avem train --agent NAME` with the set."""
    cfg = ci_config()
    cfg["agents"]["avem-gen-ml-learned-plan.noig"] = {"set": {"ml.control_info_gain": False}, "seeds": [0]}
    s = avem_study.Study.from_config(checked(cfg))
    s.check()
    assert s.registered_of("avem-gen-ml-learned-plan.noig") == "avem-gen-ml-learned-plan"
    assert s.registered_of("sac") == "sac"
    run = [r for r in s.runs() if r.agent.endswith(".noig")]
    assert [r.seed for r in run] == [0]
    target = run[0].path(cfg["results_dir"] + "/runs") / "eval.csv"
    r = snakemake(tmp_path, "-n", "-p", str(target), "--configfile", str(write_config(tmp_path, cfg)))
    assert r.returncode == 0, r.stderr[-3000:]
    cmd = [line for line in r.stdout.splitlines() if "avem train" in line][0]
    assert "--agent avem-gen-ml-learned-plan --task" in cmd and "seed0" in cmd and ".noig/seed0" in cmd
    assert "--set ml.control_info_gain=false" in cmd


def test_agent_seeds_replace_the_study_seeds() -> None:
    cfg = ci_config()
    cfg["agents"]["sac"] = {"seeds": [0, 1, 2, 3]}
    s = avem_study.Study.from_config(checked(cfg))
    seeds = {a: sorted(r.seed for r in s.runs() if r.agent == a) for a in s.agent_names}
    assert seeds["sac"] == [0, 1, 2, 3]
    assert all(v == list(s.seeds) for a, v in seeds.items() if a != "sac")
    assert [r for r in s.expected_rows() if r[1] == "sac"][-1][2] == 3
    cfg["agents"]["sac"] = {"seeds": [1, 1]}
    with pytest.raises(avem_study.StudyError, match=r"agents.sac.seeds"):
        checked(cfg)


def test_manifest_written_then_read(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "a.pdf").write_bytes(b"x")
    written = avem_study.write_manifest(tmp_path, [("a.png", "A."), ("a.pdf", "A.")])
    assert json.loads((tmp_path / "manifest.json").read_text()) == written
    items = avem_study.read_manifest(tmp_path / "manifest.json")
    assert items == {"figures/a.png": {"path": str(tmp_path / "a.png"), "caption": "A."}}
    for other in ({"files": [{"path": "a.png", "caption": "A."}]}, {"a.png": "A."}, [{"path": "a.png"}]):
        (tmp_path / "manifest.json").write_text(json.dumps(other))  # not the shape analysis writes
        with pytest.raises(ValueError, match="manifest"):
            avem_study.read_manifest(tmp_path / "manifest.json")
    avem_study.write_manifest(tmp_path, [("gone.png", "")])
    with pytest.raises(ValueError, match="gone.png"):
        avem_study.read_manifest(tmp_path / "manifest.json")


# ---- snakemake itself ----------------------------------------------------------------------
def test_bad_config_fails_at_dag_time(tmp_path: Path) -> None:
    cfg = ci_config()
    cfg["agents"]["avem-disc-uniform"] = {"set": {"planning": True, "marginal_likelihood": True}}
    r = snakemake(tmp_path, "-n", "--cores", "1", "--configfile", str(write_config(tmp_path, cfg)))
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "agents.avem-disc-uniform on task 'cartpole-swingup-pos': model='discriminative' conflicts with " \
           "planning=True and marginal_likelihood=True" in out, out
    assert "Building DAG" not in out and not (tmp_path / "results").exists()

    cfg = ci_config()
    cfg["seeds"] = "0-4"
    r = snakemake(tmp_path, "-n", "--cores", "1", "--configfile", str(write_config(tmp_path, cfg)))
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "invalid study config: seeds: '0-4' is not of type 'array'" in out, out


def test_full_config_builds_dag(tmp_path: Path) -> None:
    missing = sorted(set(load(FULL)["agents"]) - set(registry.names()))
    if missing:
        pytest.skip(f"the full study names agents not registered yet: {missing}")
    r = snakemake(tmp_path, "-n", "--cores", "4")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    cfg = load(FULL)
    n_runs = len(cfg["tasks"]) * len(cfg["agents"]) * len(cfg["seeds"])
    assert _job_count(out, "train") == n_runs, out


def test_quick_study_tracks_after_training(tmp_path: Path) -> None:
    """quick.yaml (`tracking: after`): every training job runs --no-tracking without the store as input, and
    one mlflow_import job (after the store) is part of the default target from the start."""
    r = snakemake(tmp_path, "-n", "-p", "--cores", "2", "--configfile", str(QUICK))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    cfg = load(QUICK)
    n_runs = len(cfg["tasks"]) * len(cfg["agents"]) * len(cfg["seeds"])
    assert _job_count(out, "train") == n_runs and _job_count(out, "mlflow_import") == 1, out[-3000:]
    commands = [line for line in out.splitlines() if " avem train " in f" {line} "]
    assert len(commands) == n_runs and all("--no-tracking" in c for c in commands)
    assert "avem mlflow-import" in out


def test_a_training_job_asks_slurm_for_a_gpu_and_runs_on_cuda(tmp_path: Path) -> None:
    """README's cluster example: ``resources: {gres, slurm_extra}`` reach the job (the SLURM executor's
    resource names) and the run gets ``--set device=cuda``; other agents' jobs ask for no GPU."""
    cfg = ci_config()
    cfg["agents"]["sac"] = {"set": {"device": "cuda"}, "resources": {"gres": "gpu:1", "slurm_extra": "--mail-type=FAIL"}}
    s = avem_study.Study.from_config(checked(cfg))
    s.check()  # resolvable on a machine without a GPU: the device is checked where the job runs
    assert "--set device=cuda" in s.set_args("sac") and "device" not in s.set_args("avem-gen-ml-learned-plan")
    r = snakemake(tmp_path, "-n", "-p", "--cores", "1", "--configfile", str(write_config(tmp_path, cfg)))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    jobs = [j for j in out.split("\nrule ") if j.startswith("train:")]
    sac = [j for j in jobs if "agent=sac," in j]
    assert sac and all("gres=gpu:1" in j and "slurm_extra=--mail-type=FAIL" in j and "device=cuda" in j for j in sac)
    assert all("gres=" not in j for j in jobs if "agent=sac," not in j), out


def _job_count(out: str, rule: str) -> int:
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == rule and parts[1].isdigit():
            return int(parts[1])
    return -1


def test_lint_has_only_justified_findings(tmp_path: Path) -> None:
    # (snakemake 9.27's CLI ignores `--lint json`: parse the text, "Lints for ...:" then "    * TITLE:")
    r = snakemake(tmp_path, "--lint", "--configfile", str(CI))
    out = r.stdout + r.stderr
    assert "Traceback" not in out and "Error" not in out, out
    findings, where = [], None
    for line in out.splitlines():
        if line.startswith("Lints for "):
            where = line
        elif line.startswith("    * ") and where is not None:
            findings.append((where, line[len("    * "):].removesuffix(":")))
    assert findings or "Congratulations" in out, out
    unjustified = [f for f in findings if f[1] not in JUSTIFIED_LINTS]
    assert not unjustified, unjustified


# ---- one store, many concurrent jobs ---------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_concurrent_jobs_lose_nothing_in_one_store(tmp_path: Path) -> None:
    """Four `avem train` jobs at once against one SQLite store created beforehand (as the
    workflow's mlflow_store rule does): every run and every metric step arrives."""
    from mlflow.tracking import MlflowClient

    uri = avem_study.default_tracking_uri(tmp_path)
    avem_study.create_store(uri, "concurrent", tmp_path / "store.json")
    sets = ["seed_steps=1000", "eval_every=1000", "eval_episodes=1", "checkpoint_every=1000", "experiment=concurrent"]
    env = tool_env(drop=(), MLFLOW_TRACKING_URI=uri)
    outs = [tmp_path / "runs" / f"seed{s}" for s in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "avem.cli", "train", "--agent", "sac", "--task", "cartpole-swingup-pos", "--seed", str(s),
                               "--steps", "2000", "--out", str(out), "--tiny", *[a for kv in sets for a in ("--set", kv)]],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for s, out in enumerate(outs)]
    for p in procs:
        log, _ = p.communicate(timeout=200)
        assert p.returncode == 0, log

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("concurrent")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 4
    for out in outs:
        info = json.loads((out / "run.json").read_text())
        run = client.get_run(info["mlflow_run_id"])
        assert run.info.status == "FINISHED" and info["tracking_uri"] == uri
        with open(out / "eval.csv") as f:
            eval_steps = sorted({int(r["step"]) for r in csv.DictReader(f)})
        with open(out / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        for key in ("eval/return_mean", "eval/return_std"):
            assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == eval_steps, key
        metric_keys = [k for k in rows[0] if k != "step"]
        assert any(k.startswith("train/") for k in metric_keys)
        for key in metric_keys:
            expected = sorted(int(r["step"]) for r in rows if r[key] != "")
            got = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert got == expected, (out.name, key)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tracking_after_imports_every_run_once_at_the_end(tmp_path: Path) -> None:
    """`tracking: after`: training jobs run with --no-tracking (run.json names no MLflow run, the store is
    not their input) and one mlflow_import job loads every run into the study's store; run again after a
    new seed is added, it imports only that one."""
    from mlflow.tracking import MlflowClient

    cfg = {**ci_config(), "agents": {"random": None}, "seeds": [0], "tracking": "after",
           "probe": {"agents": [], "tasks": None, "episodes": 2}}
    target = f"{cfg['results_dir']}/mlflow/imported.txt"
    r = snakemake(tmp_path, "--cores", "2", target, "--configfile", str(write_config(tmp_path, cfg)))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = tmp_path / cfg["results_dir"]
    info = json.loads((res / "runs" / "cartpole-swingup-pos" / "random" / "seed0" / "run.json").read_text())
    assert info["status"] == "finished" and "mlflow_run_id" not in info
    assert "1 runs imported" in (tmp_path / target).read_text()
    cfg["seeds"] = [0, 1]
    r = snakemake(tmp_path, "--cores", "2", target, "--configfile", str(write_config(tmp_path, cfg)))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / target).read_text().startswith("1 runs imported, 1 already in the store")
    store = json.loads((res / "mlflow" / "store.json").read_text())
    runs = MlflowClient(store["tracking_uri"]).search_runs([store["experiment_id"]])
    assert len(runs) == 2 and {m.info.status for m in runs} == {"FINISHED"}
    assert all(m.data.tags["imported"] == "true" and "eval/return_mean" in m.data.metrics for m in runs)


# ---- the CI study, for real, through every stage ---------------------------------------------
@pytest.fixture(scope="module")
def ci_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("ci-study")
    r = snakemake(work, "--cores", "2", "--configfile", str(CI), timeout=600)
    return work, r


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ci_study_runs_every_stage(ci_run) -> None:
    from mlflow.tracking import MlflowClient

    work, r = ci_run
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    cfg = checked(ci_config())
    s = avem_study.Study.from_config(cfg)
    res, logs = work / cfg["results_dir"], work / cfg["logs_dir"]
    store = json.loads((res / "mlflow" / "store.json").read_text())
    client = MlflowClient(store["tracking_uri"])
    for run in s.runs():
        d = run.path(res / "runs")
        for name in ("eval.csv", "metrics.csv", "config.yaml", "checkpoint.pt", "run.json"):
            assert (d / name).exists(), d / name
        info = json.loads((d / "run.json").read_text())
        assert info["status"] == "finished" and info["tracking_uri"] == store["tracking_uri"]
        mlrun = client.get_run(info["mlflow_run_id"])  # run.json links to its MLflow run
        assert mlrun.info.status == "FINISHED" and mlrun.info.experiment_id == store["experiment_id"]
        assert (logs / "train" / f"{rundir.run_name(run.task, run.agent, run.seed)}.log").exists()
        assert (res / "benchmarks" / "train" / f"{rundir.run_name(run.task, run.agent, run.seed)}.tsv").exists()
    for run in s.probe_runs():
        assert (run.path(res / "runs") / "probe.csv").exists()
    with open(res / "tables" / "expected.csv") as f:
        assert len(list(csv.DictReader(f))) == len(s.runs())
    for name in ("eval", "metrics", "runs", "probe"):
        assert (res / "tables" / f"{name}.csv").exists(), name
    with open(res / "tables" / "runs.csv") as f:
        assert {row["status"] for row in csv.DictReader(f)} == {"finished"}
    items = avem_study.read_manifest(res / "figures" / "manifest.json")
    assert items and all(i["caption"] for i in items.values())
    for key in items:
        assert (res / "report" / key).exists(), key


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ci_study_report_rerun_and_figures_target(ci_run) -> None:
    work, r = ci_run
    assert r.returncode == 0
    cfg = load(CI)
    res = work / cfg["results_dir"]
    # the report: every figure, with its caption
    rep = snakemake(work, "--configfile", str(CI), "--report", "report.html")
    assert rep.returncode == 0, rep.stderr[-4000:]
    html = (work / "report.html").read_text()
    for key, item in avem_study.read_manifest(res / "figures" / "manifest.json").items():
        assert Path(key).name in html, key
        assert item["caption"].split()[0] in html, key
    # up to date: nothing to do
    dry = snakemake(work, "-n", "--cores", "2", "--configfile", str(CI))
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    # a finished run re-run (a requeued or re-triggered job) is a no-op that keeps its outputs
    run = avem_study.Study.from_config(checked(load(CI))).runs()[0]
    target = run.path(res / "runs") / "eval.csv"
    before = target.read_text()
    again = snakemake(work, "--cores", "1", "--configfile", str(CI), "--force", str(target.relative_to(work)))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    log = work / cfg["logs_dir"] / "train" / f"{rundir.run_name(run.task, run.agent, run.seed)}.log"
    assert "already finished; nothing to do" in log.read_text() and target.read_text() == before
    # the figures target: figures from the runs on disk, never training
    figs = snakemake(work, "figures", "--cores", "1", "--configfile", str(CI))  # target first: --configfile takes 1+
    out = figs.stdout + figs.stderr
    assert figs.returncode == 0, out[-4000:]
    ran = set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", out, re.M))
    assert {"collect", "plot"} <= ran and not ran & {"train", "probe", "mlflow_store"}, ran
    for key, item in avem_study.read_manifest(res / "figures" / "manifest.json").items():
        # a report copy reruns unless its figure came out byte-identical (Snakemake compares checksums)
        assert (res / "report" / key).read_bytes() == Path(item["path"]).read_bytes(), key
