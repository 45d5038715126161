"""Snakemake script of rule expected_runs: write task,agent,seed,preset,set of every expected run."""
import csv

with open(snakemake.log[0], "w") as log, open(snakemake.output[0], "w", newline="") as f:  # noqa: F821
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["task", "agent", "seed", "preset", "set"])
    w.writerows(snakemake.params.runs)  # noqa: F821
    print(f"{len(snakemake.params.runs)} expected runs", file=log)  # noqa: F821
