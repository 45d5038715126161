# The AVEM study: every task x agent x seed trained with `avem train`, aggregated into tidy
# tables, plotted, and reported. Stages live in workflows/rules/*.smk; the study config in
# workflows/config/ (shape: schema.yaml). README, "The study", shows the three ways to run it.
#
#   snakemake --cores N                                              # the full study
#   snakemake --cores N --configfile workflows/config/quick.yaml     # every stage, laptop-sized
#   snakemake --cores 1 figures                                      # figures from existing runs
#   snakemake figures --cores 1 --configfile workflows/config/quick.yaml  # (target before --configfile)
#   snakemake --report results/report.html                           # every figure, captioned
#
# `snakemake --lint` findings, justified: "Specify a conda environment or container for each
# rule" (every rule): every rule runs this repository's own code (`avem`, `python -m analysis`)
# in the one environment README's set-up command installs from requirements.lock; a per-rule
# environment would have to install the repository itself. Nothing else is reported
# (tests/test_workflow.py keeps it so).

# A --configfile replaces the full study instead of being merged into it: studies are complete
# files (deep-merging `agents:` mappings would silently add the full study's agents).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "workflows", "config", "config.yaml")


include: "workflows/rules/common.smk"


report: "workflows/report/workflow.rst"


rule all:
    """Every stage: runs, probes, tables, figures and their report copies (see common.smk)."""
    input:
        all_targets(),
        report_items,
    default_target: True


include: "workflows/rules/train.smk"
include: "workflows/rules/aggregate.smk"
include: "workflows/rules/figures.smk"
