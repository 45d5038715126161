"""Snakemake script of rule mlflow_store: create the study's MLflow store and experiment once."""
import sys

from avem.study import create_store

with open(snakemake.log[0], "w") as log:  # noqa: F821 (injected by Snakemake)
    sys.stdout = sys.stderr = log
    info = create_store(snakemake.params.uri, snakemake.params.experiment, snakemake.output[0])  # noqa: F821
    print(f"MLflow store ready: {info}")
