"""MLflow tracking of one run, safe for many concurrent jobs on one store.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set, else a SQLite store inside the
run's output directory. Every call to the store is retried with back-off, so a transient
"database is locked" from a shared SQLite file loses nothing.

A run trained with ``avem train --no-tracking`` has no MLflow run (``Untracked``): it writes only its
run directory, which ``avem mlflow-import`` loads into a store after the fact (the quick study does
so: one process pays MLflow's start-up instead of every job).

Every run carries the tag ``run_dir`` (the run directory's absolute path). A run killed after
its MLflow run was created but before ``run.json`` named it leaves that run RUNNING; the next
start adopts it (``adopt_run``), so one run directory maps to one MLflow run.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from avem.train.retry import retry

RUN_DIR_TAG = "run_dir"


def tracking_uri(out_dir: Path) -> str:
    """``MLFLOW_TRACKING_URI`` or ``sqlite:///<out_dir>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(out_dir).resolve() / 'mlflow.db'}"


def ensure_experiment(uri: str, name: str) -> str:
    """Create the experiment if missing (artifacts beside a SQLite file); return its id. Idempotent."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)

    def get_or_create() -> str:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
        try:
            return client.create_experiment(name, artifact_location=location)
        except Exception:  # another job created it first: read it back
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    return retry(get_or_create)


def runs_of_dir(client, exp_id: str, run_dir: Path, where: str = "") -> list:
    """The MLflow runs of experiment ``exp_id`` tagged with ``run_dir`` (newest first), filtered in the
    store, not here: a study's store holds many runs. ``where``: an extra filter clause."""
    query = " and ".join(q for q in (f"tags.{RUN_DIR_TAG} = '{Path(run_dir).resolve()}'", where) if q)
    return retry(lambda: client.search_runs([exp_id], query, order_by=["attributes.start_time DESC"]))


def adopt_run(uri: str, experiment: str, run_dir: Path, known: str | None) -> str | None:
    """The MLflow run to continue for ``run_dir``: ``known`` (run.json's), else the newest RUNNING
    run tagged with this directory, else None (create one). Every other RUNNING run of the
    directory is closed as KILLED with the tag ``superseded_by``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    running = runs_of_dir(client, ensure_experiment(uri, experiment), run_dir, "attributes.status = 'RUNNING'")
    orphans = [r.info.run_id for r in running]
    keep = known or (orphans[0] if orphans else None)
    for run_id in orphans:
        if run_id != keep:
            retry(lambda run_id=run_id: client.set_tag(run_id, "superseded_by", keep))
            retry(lambda run_id=run_id: client.set_terminated(run_id, status="KILLED"))
    return keep


class Tracker:
    """One MLflow run. ``run_id=None`` creates it; otherwise reopens it (resume, or an adopted run,
    whose params are completed if the kill came before they were all logged).

    On resume the loop replays, deterministically, the steps between its last checkpoint and the
    kill; their metrics are already in the store, so ``log_metrics`` skips every (key, step) at or
    below the last step stored for that key: each metric step is stored exactly once.
    """

    def __init__(self, uri: str, experiment: str, run_name: str, tags: dict[str, str],
                 params: dict[str, object], run_id: str | None = None):
        from mlflow.entities import RunTag
        from mlflow.tracking import MlflowClient

        self.uri, self.client = uri, MlflowClient(uri)
        self._logged: dict[str, int] = {}  # key -> last step already in the store (resume only)
        if run_id is None:
            exp_id = ensure_experiment(uri, experiment)
            run = retry(lambda: self.client.create_run(exp_id, run_name=run_name,
                                                       tags={k: str(v) for k, v in tags.items()}))
            self.run_id = run.info.run_id
            self._log_params(params)
        else:
            self.run_id = run_id
            retry(lambda: self.client.update_run(run_id, status="RUNNING"))
            retry(lambda: self.client.log_batch(run_id, tags=[RunTag("resumed", "true")] + [
                RunTag(k, str(v)) for k, v in tags.items() if k == RUN_DIR_TAG]))
            data = retry(lambda: self.client.get_run(run_id)).data
            self._log_params({k: v for k, v in params.items() if k not in data.params})
            for key in data.metrics:
                history = retry(lambda key=key: self.client.get_metric_history(run_id, key))
                self._logged[key] = max((m.step for m in history), default=-1)

    def _log_params(self, params: dict[str, object]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):
            retry(lambda chunk=items[i:i + 100]: self.client.log_batch(self.run_id, params=chunk))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log scalar metrics at simulator step ``step`` (non-finite values are logged as-is)."""
        self.log_history([(step, metrics)])

    def log_history(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Log ``(simulator step, {key: value})`` rows, batched (a run's whole history at once)."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, int(step)) for step, metrics in rows for k, v in sorted(metrics.items())
                 if int(step) > self._logged.get(k, -1)]
        for i in range(0, len(items), 500):
            retry(lambda chunk=items[i:i + 500]: self.client.log_batch(self.run_id, metrics=chunk))

    def log_artifact(self, path: Path, subdir: str | None = None) -> None:
        retry(lambda: self.client.log_artifact(self.run_id, str(path), subdir))

    def set_tag(self, key: str, value: str) -> None:
        retry(lambda: self.client.set_tag(self.run_id, key, value))

    def finish(self, status: str = "FINISHED") -> None:
        retry(lambda: self.client.set_terminated(self.run_id, status=status))


class Untracked:
    """The ``Tracker`` interface doing nothing: a run that writes only its run directory (run.json names no
    MLflow run; ``avem mlflow-import`` loads the directory later). MLflow is never imported."""

    run_id: str | None = None
    uri: str | None = None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_history(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        pass

    def log_artifact(self, path: Path, subdir: str | None = None) -> None:
        pass

    def set_tag(self, key: str, value: str) -> None:
        pass

    def finish(self, status: str = "FINISHED") -> None:
        pass
