# Aggregation: the runs' files -> tidy tables (`python -m analysis collect`).


rule expected_runs:
    """task,agent,seed,preset,set of every run the study expects (collect marks each finished/missing/failed)."""
    output:
        EXPECTED,
    log:
        f"{LOGS}/expected_runs.log",
    params:
        runs=STUDY.expected_rows(),  # rewritten when the study changes
    localrule: True
    script:
        "../scripts/expected_runs.py"


rule collect:
    """Every run's eval.csv, metrics.csv (and probe.csv) -> results/tables/{eval,metrics,runs,probe}.csv."""
    input:
        runs=collect_inputs,
        expected=EXPECTED,
    output:
        evals=f"{TABLES}/eval.csv",
        metrics=f"{TABLES}/metrics.csv",
        runs=f"{TABLES}/runs.csv",
        probes=f"{TABLES}/probe.csv",
    log:
        f"{LOGS}/collect.log",
    params:
        runs_dir=RUNS,
        out=lambda wc, output: os.path.dirname(output.evals),
    localrule: True
    shell:
        "python -m analysis collect --runs {params.runs_dir:q} --expected {input.expected:q}"
        " --out {params.out:q} > {log:q} 2>&1"
