# Helpers and validation, loaded before every stage.
#
# 1. The config's shape is checked against workflows/config/schema.yaml with
#    snakemake.utils.validate (defaults filled in; avem.study.validate_config cuts the error to
#    one line naming the entry).
# 2. avem.study.Study.check() resolves every (task, agent) as `avem train` will, so an unknown
#    task or agent, a bad override or an invalid switch combination fails here, naming the
#    entry, before any job runs.
# 3. Paths: everything under config["results_dir"] by run identity (no timestamps); job logs
#    under config["logs_dir"].
import os
import time

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from avem import results as avem_results
from avem import study as avem_study
from avem.train import rundir

min_version("9.0")


try:
    avem_study.validate_config(config, os.path.join(workflow.basedir, "workflows", "config", "schema.yaml"))
    STUDY = avem_study.Study.from_config(config)
    STUDY.check()
except avem_study.StudyError as e:
    raise WorkflowError(str(e)) from None


RESULTS = config["results_dir"].rstrip("/")
LOGS = config["logs_dir"].rstrip("/")
RUNS = f"{RESULTS}/runs"
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
REPORT_ITEMS = f"{RESULTS}/report"
STORE = f"{RESULTS}/mlflow/store.json"
EXPECTED = f"{TABLES}/expected.csv"
FIGURES_STAMP = f"{LOGS}/figures.stamp"
RUN_DIR = f"{RUNS}/{rundir.RUN_PATH}"  # a wildcard pattern: {task}/{agent}/seed{seed}

# One MLflow store for the whole study; every job gets this URI (also exported on a cluster,
# see workflows/profiles/slurm). A SQLite default path is absolute so every job agrees on it.
TRACKING_URI = (
    config["tracking_uri"]
    or os.environ.get("MLFLOW_TRACKING_URI")
    or avem_study.default_tracking_uri(RESULTS)
)

# tracking: after -> training jobs write only their run directories; rule mlflow_import loads them at the end.
TRACK_AFTER = config["tracking"] == "after"
IMPORTED = f"{RESULTS}/mlflow/imported.txt"

ANCHORS = config["anchors"]
if not os.path.isabs(ANCHORS):
    ANCHORS = os.path.join(workflow.basedir, ANCHORS)
if not os.path.exists(ANCHORS):
    raise WorkflowError(f"invalid study config: anchors: {config['anchors']!r} does not exist")


wildcard_constraints:
    task=r"[a-z_]+-[a-z_]+-[a-z]+",
    agent=r"[A-Za-z0-9_.-]+",
    seed=r"\d+",
    kind=r"figures|tables",
    name=r"[^/]+",


def train_store(wildcards):
    """The training job's input: the study's MLflow store, ancient() so its mtime retrains nothing.
    An ended run (run.json: finished, or failed = diverged; a committed one has no checkpoint) is a
    result, never trained again, and does not need it: where the store does not exist yet (a clean clone holding
    committed runs) its job gets no input, so creating the store for the missing runs does not
    make it out of date; where the store exists the input is the one Snakemake recorded when the
    run was trained, so its metadata sees no change either. With `tracking: after` no job needs it (rule
    mlflow_import does)."""
    if TRACK_AFTER or (avem_results.has_ended(RUN_DIR.format(**wildcards)) and not os.path.exists(STORE)):
        return []
    return ancient(STORE)


def run_outputs(runs):
    """The files `avem train` leaves that later stages read (eval.csv, metrics.csv)."""
    return [
        f"{r.path(RUNS)}/{name}" for r in runs for name in (rundir.EVAL, rundir.METRICS)
    ]


def probe_outputs(runs):
    return [f"{r.path(RUNS)}/{rundir.PROBE}" for r in runs]


def figures_only():
    """True when the target is `figures`: figures from the runs that exist, no training."""
    return "figures" in (workflow.dag_settings.targets or ())



_STAMPED = []


def _stamp_figures_run():
    """Rewrite FIGURES_STAMP with new content, once per invocation (the input function runs several times per
    DAG), so `collect` always reruns: Snakemake reruns a job for a newer input only if its checksum changed, and
    does not remake a missing temp file whose consumers exist."""
    if _STAMPED:
        return
    os.makedirs(os.path.dirname(FIGURES_STAMP), exist_ok=True)
    with open(FIGURES_STAMP, "w") as f:
        f.write(f"{time.time_ns()}\n")
    _STAMPED.append(FIGURES_STAMP)


def collect_inputs(wildcards):
    """Every expected run (and probe); with the `figures` target only the runs already on disk,
    through their run.json, which no rule writes, so nothing is trained or probed, plus a fresh
    stamp (FIGURES_STAMP, touched here), so the tables are always rebuilt: on a clean clone the files'
    timestamps (git checkout order) say nothing about which is newer."""
    if figures_only():
        _stamp_figures_run()
        return [FIGURES_STAMP] + [
            f"{r.path(RUNS)}/{rundir.RUN_JSON}"
            for r in STUDY.runs()
            if os.path.exists(f"{r.path(RUNS)}/{rundir.RUN_JSON}")
        ]
    return run_outputs(STUDY.runs()) + probe_outputs(STUDY.probe_runs())


def manifest_items():
    """`{kind/name: {path, caption}}` from the figure manifest (after the `plot` checkpoint)."""
    manifest = os.path.join(checkpoints.plot.get().output[0], avem_study.MANIFEST)
    return avem_study.read_manifest(manifest)


def report_items(wildcards):
    """Every reportable file of the manifest, as its copy under results/report/."""
    return [f"{REPORT_ITEMS}/{key}" for key in manifest_items()]


def all_targets():
    """The targets known before any job runs (the report copies wait for the `plot` checkpoint: report_items)."""
    return [
        f"{TABLES}/eval.csv",
        f"{TABLES}/metrics.csv",
        f"{TABLES}/runs.csv",
        f"{TABLES}/probe.csv",
    ] + ([IMPORTED] if TRACK_AFTER else [])
