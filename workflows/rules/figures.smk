# Figures and report: tables -> every figure and statistics table (`python -m analysis figures`,
# which lists each file with its caption in results/figures/manifest.json) -> one captioned
# report entry per file. `snakemake --cores 1 figures` redoes this from the runs on disk.


checkpoint plot:
    """Every figure (PNG + PDF), statistics table (CSV + MD) and the manifest naming them.
    A checkpoint: which files exist is known only once it has run."""
    input:
        evals=f"{TABLES}/eval.csv",
        metrics=f"{TABLES}/metrics.csv",
        runs=f"{TABLES}/runs.csv",
        probes=f"{TABLES}/probe.csv",
        anchors=ANCHORS,
    output:
        directory(FIGURES),
    log:
        f"{LOGS}/plot.log",
    params:
        tables=lambda wc, input: os.path.dirname(input.evals),
        budgets=" ".join(str(b) for b in STUDY.budgets),
        seed=config["figure_seed"],
    threads: 2  # independent figures drawn in 2 processes (the same files as 1); capped at --cores
    localrule: True
    shell:
        "python -m analysis figures --tables {params.tables:q} --out {output:q}"
        " --budgets {params.budgets} --anchors {input.anchors:q} --seed {params.seed}"
        " --workers {threads} > {log:q} 2>&1"


rule report_item:
    """One manifest file, copied under results/report/ with its caption for `snakemake --report`."""
    input:
        lambda wc: manifest_items()[f"{wc.kind}/{wc.name}"]["path"],
    output:
        report(
            f"{REPORT_ITEMS}/{{kind}}/{{name}}",
            caption="../report/item.rst",
            category="{kind}",
        ),
    log:
        f"{LOGS}/report/{{kind}}/{{name}}.log",
    params:
        caption=lambda wc: manifest_items()[f"{wc.kind}/{wc.name}"]["caption"],
    localrule: True
    shell:
        "cp {input:q} {output:q} 2> {log:q}"


rule figures:
    """Target: every figure and statistics table, from the runs already on disk (no training)."""
    input:
        report_items,
    localrule: True
