"""The CI study through Snakemake's SLURM executor on a real (single-node) SLURM cluster.

Run by ``.ci/run`` as its own step, after ``workflows/scripts/slurm_local.sh up STATE_DIR``
and with ``AVEM_SLURM_STATE=STATE_DIR``; skipped otherwise. Checks that every training job ran
as a SLURM job, that every run and metric step arrived in one MLflow tracking server, and that
the tidy results equal those of the same config run with the local executor.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import tool_env
from tests.mlflow_server import mlflow_server as start_mlflow_server

ROOT = Path(__file__).resolve().parents[2]
STATE = os.environ.get("AVEM_SLURM_STATE")
pytestmark = pytest.mark.slurm


def _cluster_up() -> bool:
    if not STATE:
        return False
    return subprocess.run(["bash", str(ROOT / "workflows/scripts/slurm_local.sh"), "status", STATE],
                          capture_output=True).returncode == 0


requires_cluster = pytest.mark.skipif(not _cluster_up(), reason="no local SLURM cluster (set AVEM_SLURM_STATE after "
                                                                 "`workflows/scripts/slurm_local.sh up STATE_DIR`)")


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on loopback with a SQLite backend and a file artifact root (as on a cluster),
    in its own session and stopped whole (tests/mlflow_server.py)."""
    with start_mlflow_server(tmp_path) as (uri, _):
        yield uri


def _snakemake(args: list[str], env: dict, timeout: float) -> None:
    """Run snakemake in the foreground; on timeout stop it with SIGINT (it ignores SIGTERM)."""
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"snakemake {' '.join(args)} timed out:\n{out[-4000:]}")
    assert proc.returncode == 0, out[-4000:]


@requires_cluster
def test_ci_study_on_slurm_equals_local_run(tmp_path, mlflow_server):
    study = yaml.safe_load((ROOT / "workflows/config/ci.yaml").read_text())
    slurm_res, local_res = tmp_path / "slurm" / "results", tmp_path / "local" / "results"
    env = tool_env(drop=(), MLFLOW_TRACKING_URI=mlflow_server)

    # README's cluster command (the partition is the profile's "debug"), results kept in tmp_path.
    _snakemake(["--profile", "workflows/profiles/slurm", "--configfile", "workflows/config/ci.yaml",
                "--config", f"results_dir={slurm_res}", f"logs_dir={tmp_path / 'slurm' / 'logs'}"], env, timeout=1500)
    local_env = tool_env()
    _snakemake(["--cores", "2", "--configfile", "workflows/config/ci.yaml",
                "--config", f"results_dir={local_res}", f"logs_dir={tmp_path / 'local' / 'logs'}"], local_env,
               timeout=1500)

    runs = sorted((slurm_res / "runs").glob("*/*/seed*"))
    expected = len(study["tasks"]) * len(study["agents"]) * len(study["seeds"])
    assert len(runs) == expected

    from mlflow.tracking import MlflowClient
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name(study["experiment"])
    assert exp is not None
    for run_dir in runs:
        prov = yaml.safe_load((run_dir / "config.yaml").read_text())["provenance"]
        assert prov["slurm_job_id"], f"{run_dir} did not run as a SLURM job"
        info = yaml.safe_load((run_dir / "run.json").read_text())
        assert info["tracking_uri"] == mlflow_server and info["status"] == "finished"
        mrun = client.get_run(info["mlflow_run_id"])
        assert mrun.info.status == "FINISHED" and mrun.info.experiment_id == exp.experiment_id
        ev = pd.read_csv(run_dir / "eval.csv")
        logged = sorted(m.step for m in client.get_metric_history(mrun.info.run_id, "eval/return_mean"))
        assert logged == sorted(ev["step"].unique()), run_dir
        met = pd.read_csv(run_dir / "metrics.csv")
        logged = sorted(m.step for m in client.get_metric_history(mrun.info.run_id, "train_return"))
        assert logged == sorted(met["step"]), run_dir
    assert len(client.search_runs([exp.experiment_id], max_results=1000)) == expected

    # same seeds => same numbers, whichever executor ran them
    for name in ("eval.csv", "runs.csv"):
        a, b = pd.read_csv(slurm_res / "tables" / name), pd.read_csv(local_res / "tables" / name)
        pd.testing.assert_frame_equal(a, b)
    assert sorted(p.name for p in (slurm_res / "figures").glob("*.png")) == \
        sorted(p.name for p in (local_res / "figures").glob("*.png"))
