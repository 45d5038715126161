"""The fault catalogue, each fault injected at a tiny size: a diverging run, a damaged checkpoint,
SIGTERM, an orphan MLflow run, a server whose workers outlive it, and a study with a diverging agent.

Runs go through ``python -m avem.cli`` in a subprocess where a signal or a process exit is part
of the fault, and through ``loop.train`` in-process otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from avem.agents import registry
from avem.train import checkpoint, faults, loop, rundir
from avem.train.config import resolve
from tests.conftest import SNAKEMAKE, TINY_RUN, tool_env
from tests.mlflow_server import group_members, mlflow_server

ROOT = Path(__file__).resolve().parents[1]
TASK = "cartpole-swingup-pos"
SETS = ["--tiny", *(a for k, v in TINY_RUN.items() for a in ("--set", f"{k}={v}"))]
ARGS = ["train", "--agent", "sac", "--task", TASK, "--seed", "0", "--steps", "5000", *SETS]
DIVERGING = ["train", "--agent", "sac", "--task", "pendulum-swingup-pos", "--seed", "0", "--steps", "3000", *SETS,
             "--set", "critic_lr=1e6", "--set", "actor_lr=1e6"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avem.cli", *args], capture_output=True, text=True, timeout=300)


def _avem_lines(stderr: str) -> list[str]:
    """What avem itself said on stderr (MLflow's INFO log lines left out)."""
    return [line for line in stderr.splitlines() if line.strip() and " INFO " not in line]


def _start_and_wait(out: Path, eval_steps: int = 4) -> subprocess.Popen:
    """Start ARGS into ``out``; return once ``eval_steps`` evaluations are in eval.csv (checkpoints
    at 1000 and 2000 simulator steps are then on disk)."""
    proc = subprocess.Popen([sys.executable, "-m", "avem.cli", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        ev = out / "eval.csv"
        if ev.exists() and len(ev.read_text().splitlines()) > eval_steps * TINY_RUN["eval_episodes"]:
            return proc
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the run ended or stalled before {eval_steps} evaluations: {proc.communicate()[1][-2000:]}")


def _mlflow(out: Path):
    """``(client, the run's MLflow run, every run of its experiment)``."""
    from mlflow.tracking import MlflowClient

    info = json.loads((out / "run.json").read_text())
    client = MlflowClient(info["tracking_uri"])
    run = client.get_run(info["mlflow_run_id"])
    return client, run, client.search_runs([run.info.experiment_id])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """ARGS run uninterrupted."""
    ref = tmp_path_factory.mktemp("faults") / "ref"
    r = _cli(*ARGS, "--out", str(ref))
    assert r.returncode == 0, r.stderr
    return ref


# ---- divergence ------------------------------------------------------------------------------
def test_diverging_run_is_marked_failed_with_its_reason(tmp_path):
    out = tmp_path / "run"
    r = _cli(*DIVERGING, "--out", str(out))
    lines = _avem_lines(r.stderr)
    assert r.returncode == faults.FAILED_EXIT and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and "diverged at simulator step" in lines[0], lines
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and info["reason"].startswith("diverged at simulator step")
    assert info["reason"] in lines[0]
    assert len(pd.read_csv(out / "eval.csv")) > 0 and (out / "metrics.csv").exists()
    _, run, runs = _mlflow(out)
    assert run.info.status == "FAILED" and run.data.tags["end_reason"] == info["reason"] and len(runs) == 1

    # started again: refused in one line, nothing touched (the same config diverges again)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = _cli(*DIVERGING, "--out", str(out))
    lines = _avem_lines(again.stderr)
    assert again.returncode == faults.FAILED_EXIT and len(lines) == 1 and "delete" in lines[0], again.stderr
    assert info["reason"] in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_nan_distribution_parameters_become_divergence():
    with pytest.raises(faults.Diverged, match="diverged at simulator step 7: Normal parameter loc is not finite"):
        with faults.nan_guard(lambda: 7):
            torch.distributions.Normal(torch.tensor([float("nan")]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="other"):  # any other ValueError passes through
        with faults.nan_guard(lambda: 7):
            raise ValueError("other")
    assert faults.check_finite({"a": torch.tensor(1.5)}, 3) == {"a": 1.5}
    with pytest.raises(faults.Diverged, match="at simulator step 3: b = inf"):
        faults.check_finite({"a": 1.0, "b": float("inf")}, 3)


# ---- damaged checkpoints ---------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, reference):
    out = tmp_path / "run"
    proc = _start_and_wait(out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    lost = tmp_path / "lost"  # a copy where every checkpoint is damaged
    subprocess.run(["cp", "-a", str(out), str(lost)], check=True)

    _truncate(out / "checkpoint.pt")
    r = _cli(*ARGS, "--out", str(out))
    assert r.returncode == 0, r.stderr
    said = [line for line in _avem_lines(r.stderr) if "checkpoint" in line]
    assert len(said) == 1 and "checkpoint.pt does not load" in said[0] and "checkpoint.prev.pt" in said[0], said
    pd.testing.assert_frame_equal(pd.read_csv(out / "eval.csv"), pd.read_csv(reference / "eval.csv"))
    assert (out / "checkpoint.pt.damaged").exists() and not (out / "checkpoint.prev.pt").exists()

    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        _truncate(lost / name)
    r = _cli(*ARGS, "--out", str(lost))
    lines = _avem_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "no checkpoint in" in lines[0] and "to start over, delete" in lines[0]


def test_a_kill_at_any_rename_of_a_save_leaves_a_complete_latest(tmp_path, monkeypatch):
    """``checkpoint.save`` is a sequence of renames; at each one ``checkpoint.pt`` is there and loads,
    so a kill mid-save never leaves the run to fall back on the checkpoint before; the temporary file
    such a kill leaves is removed on resume."""
    checkpoint.save(tmp_path, {"step": 1})
    checkpoint.save(tmp_path, {"step": 2})
    latest, real_replace, seen = tmp_path / rundir.CHECKPOINT, os.replace, []

    def watched(src, dst):
        seen.append(checkpoint.read(latest)["step"])
        real_replace(src, dst)
        seen.append(checkpoint.read(latest)["step"])

    monkeypatch.setattr(os, "replace", watched)
    checkpoint.save(tmp_path, {"step": 3})
    monkeypatch.undo()
    assert seen == [2, 2, 2, 3]  # the previous one kept, then the new one in place
    assert checkpoint.read(tmp_path / rundir.CHECKPOINT_PREV)["step"] == 2
    assert {p.name for p in tmp_path.iterdir()} == {rundir.CHECKPOINT, rundir.CHECKPOINT_PREV}  # no temporary left

    killed = tmp_path / f".{rundir.CHECKPOINT}.x1y2.tmp"  # what a save killed before its rename leaves
    killed.write_bytes(b"half a checkpoint")
    assert checkpoint.load(tmp_path)["step"] == 3 and not killed.exists()


def test_a_save_on_a_full_disk_still_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """Where the previous latest cannot be copied (no space), it is moved aside as before."""
    checkpoint.save(tmp_path, {"step": 1})

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", no_space)
    checkpoint.save(tmp_path, {"step": 2})
    monkeypatch.undo()
    assert checkpoint.read(tmp_path / rundir.CHECKPOINT)["step"] == 2
    assert checkpoint.read(tmp_path / rundir.CHECKPOINT_PREV)["step"] == 1
    assert {p.name for p in tmp_path.iterdir()} == {rundir.CHECKPOINT, rundir.CHECKPOINT_PREV}


# ---- SIGTERM (SLURM preemption, time limit) ----------------------------------------------------
def test_sigterm_interrupts_cleanly_and_the_rerun_resumes(tmp_path, reference):
    out = tmp_path / "run"
    proc = _start_and_wait(out)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    lines = _avem_lines(stderr)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr, stderr
    assert len(lines) == 1 and "interrupted by SIGTERM at simulator step" in lines[0], lines
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and "SIGTERM" in info["reason"]
    _, run, _ = _mlflow(out)
    assert run.info.status == "KILLED"

    r = _cli(*ARGS, "--out", str(out))  # what a requeued job runs
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out / "eval.csv"), pd.read_csv(reference / "eval.csv"))
    info2 = json.loads((out / "run.json").read_text())
    assert info2["status"] == "finished" and "reason" not in info2
    _, run, runs = _mlflow(out)
    assert run.info.run_id == info["mlflow_run_id"] and run.info.status == "FINISHED" and len(runs) == 1


def test_a_stop_signal_ends_an_update_burst_before_its_next_update(tmp_path, monkeypatch):
    """A SIGTERM that arrives during the first update of a 50-update burst (PlaNet's per-episode schedule)
    ends the run before the second update; the handler is called as the signal would call it."""
    run, cfg = resolve("planet", TASK, seed=0, steps=5000, tiny=True,
                       sets={**TINY_RUN, "updates_per_episode": 50})
    agent_cls, calls = registry.get("planet").factory, []
    real_update = agent_cls.update

    def update(agent, buffer):
        calls.append(1)
        if len(calls) == 1:
            handler = signal.getsignal(signal.SIGTERM)
            assert isinstance(handler, type(faults.StopSignals()._note)), "the loop's stop handler is not installed"
            handler(signal.SIGTERM, None)
        return real_update(agent, buffer)

    monkeypatch.setattr(agent_cls, "update", update)
    with pytest.raises(faults.Interrupted, match="interrupted by SIGTERM at simulator step"):
        loop.train(run, cfg, tmp_path / "run", tracking=False)
    assert len(calls) == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"


# ---- orphan MLflow runs ----------------------------------------------------------------------
class _Killed(BaseException):
    """Stands for a SIGKILL at the patched point (nothing after it runs)."""


@pytest.mark.parametrize("kill_at", ["before run.json names the MLflow run", "before the first checkpoint"])
def test_orphan_mlflow_run_is_adopted(kill_at, tmp_path, monkeypatch):
    run, cfg = resolve("random", TASK, seed=0, steps=2000, sets=dict(TINY_RUN))
    out = tmp_path / "run"
    target = (rundir, "write_run_json") if kill_at.startswith("before run.json") else (loop, "_checkpoint")

    def killed(*args, **kwargs):
        raise _Killed()

    with monkeypatch.context() as m:
        m.setattr(*target, killed)
        with pytest.raises(_Killed):
            loop.train(run, cfg, out)
    assert not (out / "checkpoint.pt").exists()
    result = loop.train(run, cfg, out)
    assert result["status"] == "finished"
    _, mrun, runs = _mlflow(out)
    assert [r.info.run_id for r in runs] == [mrun.info.run_id], "one run directory, one MLflow run"
    assert mrun.info.status == "FINISHED" and mrun.data.tags["run_dir"] == str(out.resolve())
    assert mrun.data.params["run.seed"] == "0"


# ---- the tables ------------------------------------------------------------------------------
@pytest.mark.parametrize("status, reason", [("failed", "diverged at simulator step 1004: critic_loss = inf"),
                                            ("interrupted", "interrupted by SIGTERM at simulator step 2048")])
def test_collect_lists_a_run_that_ended_early_with_its_reason(status, reason, tmp_path):
    from analysis import tidy

    d = rundir.run_path(tmp_path, TASK, "sac", 0)
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"status": status, "reason": reason}))
    (d / "eval.csv").write_text("task,agent,seed,obs,step,episode,return,length\n"
                                f"{TASK},sac,0,pos,0,0,12.5,125\n{TASK},sac,0,pos,1000,0,30.0,125\n")
    tables = tidy.collect(tmp_path)
    row = tables["runs"].iloc[0]
    assert (row["status"], row["note"], row["final_step"]) == (status, reason, 1000)
    assert len(tables["eval"]) == 2  # the rows it has are kept
    note = tidy.missing_note(tables["runs"])
    assert (reason in note) == (status == "failed") and f"({status}" in note


# ---- servers the suite starts --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mlflow_server_is_stopped_whole(tmp_path):
    with mlflow_server(tmp_path) as (uri, proc):
        deadline = time.time() + 60  # the job runner starts its huey consumers after the server is up
        while len(members := group_members(proc.pid)) < 3 and time.time() < deadline:
            time.sleep(0.5)
        assert len(members) >= 3, members  # server, uvicorn worker, job runner (+ consumers)
    alive = [pid for pid in members if Path(f"/proc/{pid}").exists() and pid in group_members(proc.pid)]
    assert not alive and not group_members(proc.pid), f"survived the stop: {alive}"


# ---- a study with a diverging agent ------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_study_with_a_diverging_agent_finishes_and_lists_it(tmp_path):
    study = yaml.safe_load((ROOT / "workflows" / "config" / "ci.yaml").read_text())
    study.update(experiment="faults", tasks=["pendulum-swingup-pos"], seeds=[0], steps=2000,
                 eval={"every": 1000, "episodes": 1}, budgets=[1000, 2000],
                 probe={"agents": ["sac"], "tasks": None, "episodes": 2},
                 agents={"random": None, "sac": {"set": {"critic_lr": 1e6, "actor_lr": 1e6}}})  # tiny: ci.yaml
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study, sort_keys=False))
    env = tool_env()
    r = subprocess.run([*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                        "--cores", "2", "--keep-going", "--configfile", str(config)],
                       capture_output=True, text=True, timeout=560, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = tmp_path / study["results_dir"]
    runs = pd.read_csv(res / "tables" / "runs.csv").set_index("agent")
    assert runs.loc["random", "status"] == "finished" and runs.loc["sac", "status"] == "failed"
    reason = json.loads((res / "runs" / "pendulum-swingup-pos" / "sac" / "seed0" / "run.json").read_text())["reason"]
    assert runs.loc["sac", "note"] == reason and reason.startswith("diverged at simulator step")
    assert reason in (res / "tables" / "missing_runs.md").read_text()
    assert set(pd.read_csv(res / "tables" / "probe.csv")["status"]) == {"run_failed"}
    manifest = json.loads((res / "figures" / "manifest.json").read_text())
    assert manifest and all((res / "figures" / e["file"]).exists() for e in manifest)
    assert all("1 of 2 expected runs are missing, failed or unfinished" in e["caption"] for e in manifest)
