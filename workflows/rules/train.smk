# Training: one MLflow store for the study, then one `avem train` job per (task, agent, seed).


rule mlflow_store:
    """Create the MLflow store (schema migrations) and the experiment once, before any training
    job starts, so concurrent jobs never race on either."""
    output:
        STORE,
    log:
        f"{LOGS}/mlflow_store.log",
    params:
        uri=TRACKING_URI,
        experiment=STUDY.experiment,
    localrule: True
    script:
        "../scripts/mlflow_store.py"


rule train:
    """`avem train` into the run's directory. The directory is resumable: a killed, interrupted
    (SIGTERM: exit 143) or requeued job restarts from its last checkpoint, a finished run is a
    no-op. A run that diverged (exit 3) is a result, not a job failure: its run.json says
    `failed` with the reason, collect lists it, and the study goes on (rerunning it would only
    diverge again). Outputs are flagged update() so Snakemake never deletes them before a
    (re)run: a finished run's files stay, and a resumed run rewrites them from its checkpoint.
    An ended run (run.json finished or failed, e.g. committed under results/reference without
    its checkpoint) is never out of date (see train_store), so it is not trained again."""
    input:
        store=train_store,
    output:
        evals=update(f"{RUN_DIR}/{rundir.EVAL}"),
        metrics=update(f"{RUN_DIR}/{rundir.METRICS}"),
    log:
        f"{LOGS}/train/{rundir.RUN_PATH}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{rundir.RUN_PATH}.tsv"
    params:
        out=lambda wc, output: os.path.dirname(output.evals),
        agent=lambda wc: STUDY.registered_of(wc.agent),  # the label NAME.TAG of a variant trains NAME
        steps=lambda wc: STUDY.steps_of(wc.agent),
        sets=lambda wc: STUDY.set_args(wc.agent),
        uri=TRACKING_URI,
        tracking="--no-tracking" if TRACK_AFTER else "",
    threads: lambda wc: STUDY.threads_of(wc.agent)
    resources:
        mem_mb=lambda wc: STUDY.resources_of(wc.agent).get("mem_mb", 4000),
        runtime=lambda wc: STUDY.resources_of(wc.agent).get("runtime", 2880),
        cpus_per_task=lambda wc: STUDY.threads_of(wc.agent),
        gres=lambda wc: STUDY.resources_of(wc.agent).get("gres"),  # None: not asked (the SLURM executor's names)
        slurm_extra=lambda wc: STUDY.resources_of(wc.agent).get("slurm_extra"),
    shell:
        "MLFLOW_TRACKING_URI={params.uri:q} avem train --agent {params.agent:q}"
        " --task {wildcards.task:q} --seed {wildcards.seed} --steps {params.steps}"
        " --out {params.out:q} {params.tracking} {params.sets} > {log:q} 2>&1 || test $? -eq 3"


rule mlflow_import:
    """`tracking: after`: every ended run of the study loaded into its MLflow store by one process
    (`avem mlflow-import`; a run already there is kept, so a rerun imports only the new ones)."""
    input:
        store=STORE,
        runs=lambda wc: run_outputs(STUDY.runs()),
    output:
        IMPORTED,
    log:
        f"{LOGS}/mlflow_import.log",
    params:
        results=lambda wc, output: os.path.dirname(os.path.dirname(output[0])),  # RESULTS (IMPORTED's dir's parent)
        uri=TRACKING_URI,
    localrule: True
    shell:
        "avem mlflow-import {params.results:q} --tracking-uri {params.uri:q} > {output:q} 2> {log:q}"


rule probe:
    """Linear probe of the agent's latent state against the true state (`avem probe`). Its input is
    ancient(): the run's evaluations being newer (a git checkout) never reprobe a run."""
    input:
        evals=ancient(f"{RUN_DIR}/{rundir.EVAL}"),
    output:
        f"{RUN_DIR}/{rundir.PROBE}",
    log:
        f"{LOGS}/probe/{rundir.RUN_PATH}.log",
    params:
        run=lambda wc, input: os.path.dirname(input.evals),
        episodes=config["probe"]["episodes"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "avem probe --run {params.run:q} --out {output:q} --episodes {params.episodes}"
        " > {log:q} 2>&1"
