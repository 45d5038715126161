"""Smoke test against a local SLURM cluster started by workflows/scripts/slurm_local.sh.

Run:  bash workflows/scripts/slurm_local.sh up /tmp/avem-slurm
      AVEM_SLURM_STATE=/tmp/avem-slurm pytest -n 0 -m slurm tests/slurm
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "workflows" / "scripts" / "slurm_local.sh"
STATE = os.environ.get("AVEM_SLURM_STATE", "")

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(180)]


def _cluster_up() -> bool:
    if not STATE or not Path(STATE, "pids").is_dir() or shutil.which("sbatch") is None:
        return False
    r = subprocess.run(["bash", str(SCRIPT), "status", STATE], capture_output=True, text=True)
    return r.returncode == 0


@pytest.fixture(scope="module")
def cluster() -> str:
    if not _cluster_up():
        pytest.skip("no running local SLURM cluster (set AVEM_SLURM_STATE to the STATE_DIR of slurm_local.sh up)")
    return STATE


def test_sbatch_wait_completes(cluster: str, tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    r = subprocess.run(
        ["sbatch", "--wait", "--parsable", "--job-name", "avem-smoke", "--mem", "100", "--time", "1",
         "--output", str(out), "--wrap", 'echo "ok $SLURM_JOB_ID $(hostname)"'],
        capture_output=True, text=True, timeout=150,
    )
    assert r.returncode == 0, f"sbatch failed: {r.stdout}\n{r.stderr}"
    job_id = r.stdout.strip().split(";")[0]
    assert job_id.isdigit(), r.stdout
    assert out.read_text().startswith(f"ok {job_id} ")
    show = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    assert show.returncode == 0, show.stderr
    assert re.search(r"\bJobState=COMPLETED\b", show.stdout), show.stdout
    assert re.search(r"\bExitCode=0:0\b", show.stdout), show.stdout
