"""``python -m analysis``: ``collect`` run directories into tidy tables; draw every ``figures`` from them.

    python -m analysis collect --runs RUNS_DIR --expected EXPECTED.csv --out TABLES_DIR
    python -m analysis figures --tables TABLES_DIR --out FIGURES_DIR --budgets 100000 500000 \\
        --anchors ANCHORS.csv --seed 0 [--reps 2000] [--workers 2]

``figures`` needs only the tables, so every figure regenerates from existing results without
training. Errors exit with status 2 and a one-line message.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="collect run directories into eval/metrics/runs/probe tables")
    c.add_argument("--runs", required=True, type=Path, help="RUNS_DIR holding {task}/{agent}/seed{seed}/")
    c.add_argument("--expected", type=Path, default=None,
                   help="CSV with columns task,agent,seed: the runs that should exist (default: every run found)")
    c.add_argument("--out", required=True, type=Path, help="TABLES_DIR to write the tables to")
    f = sub.add_parser("figures", help="every figure (PNG+PDF), statistics table (CSV+MD) and manifest.json")
    f.add_argument("--tables", required=True, type=Path, help="TABLES_DIR written by collect (stats tables go here too)")
    f.add_argument("--out", required=True, type=Path, help="FIGURES_DIR")
    f.add_argument("--budgets", type=int, nargs="+", default=[100_000, 500_000],
                   help="fixed budgets in SIMULATOR steps for the aggregate and ablation figures")
    f.add_argument("--anchors", type=Path, default=None, help="published anchors CSV (task,agent,observation,steps,mean,sd,source)")
    f.add_argument("--seed", type=int, default=0, help="seed of every bootstrap")
    f.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    f.add_argument("--workers", type=int, default=1, help="processes drawing figures at once (same files)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "collect":
            from analysis import tidy
            expected = tidy.read_expected(args.expected) if args.expected is not None else None
            tables = tidy.collect(args.runs, expected)
            tidy.write(tables, args.out)
            counts = tables["runs"]["status"].value_counts()
            print(f"{args.out}: {len(tables['runs'])} runs (" +
                  ", ".join(f"{int(counts[s])} {s}" for s in tidy.STATUSES if s in counts.index) + ")")
            return 0
        if any(b <= 0 for b in args.budgets) or args.reps < 1 or args.seed < 0 or args.workers < 1:
            raise ValueError("budgets, --reps and --workers must be positive and --seed non-negative")
        from analysis.figures import make_all
        manifest = make_all(args.tables, args.out, sorted(set(args.budgets)), args.anchors, args.seed, args.reps,
                            args.workers)
        print(f"{args.out}: {len(manifest)} figure files; manifest.json written")
        return 0
    except (FileNotFoundError, ValueError) as e:
        print(f"analysis: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
