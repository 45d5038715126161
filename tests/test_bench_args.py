"""Benchmark scripts refuse bad arguments before any training starts."""
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "benchmarks" / "bench_model_based.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120)


def test_overrides_need_a_tag_so_they_never_reuse_default_runs(tmp_path):
    proc = _run("--out", str(tmp_path), "--set", "ml.beta_ml_end=0.1")
    assert proc.returncode == 2
    assert "name them with --tag" in proc.stderr.strip().splitlines()[-1]
    assert not any(tmp_path.iterdir())


def test_a_tag_is_one_path_component(tmp_path):
    proc = _run("--out", str(tmp_path), "--set", "ml.beta_ml_end=0.1", "--tag", "a/b")
    assert proc.returncode == 2 and "--tag takes letters" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_threads_must_be_positive(tmp_path):
    proc = _run("--out", str(tmp_path), "--threads", "0")
    assert proc.returncode == 2 and "--threads takes a positive number" in proc.stderr
    assert not any(tmp_path.iterdir())
