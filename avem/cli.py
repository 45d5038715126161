"""``avem`` command line: ``tasks``, ``agents``, ``train``, ``config``, ``probe``, ``publish``, ``mlflow-import``.

Every argument is validated (config resolved, output directory inspected) before anything is
written; errors exit with status 2 and a one-line message. ``avem train`` exits with 3 when the
run diverges (or diverged before: it is not rerun) and with 128 + the signal number when SIGTERM
or SIGINT interrupts it (resumable), each with one line on stderr (``avem.train.faults``).
"""
from __future__ import annotations

import argparse
import sys

import yaml
from pathlib import Path

from avem.train import rundir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avem", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list task ids (DOMAIN-TASK-OBS)")
    sub.add_parser("agents", help="list registered agents with a one-line description")
    for name, helptext in (("train", "train and evaluate one agent on one task"),
                           ("config", "print the fully resolved configuration and exit")):
        t = sub.add_parser(name, help=helptext)
        t.add_argument("--agent", required=True, help="registered agent name (avem agents)")
        t.add_argument("--task", required=True, help="task id, e.g. cartpole-swingup-pos (avem tasks)")
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("--steps", type=int, default=100_000, help="budget in SIMULATOR steps")
        t.add_argument("--set", dest="sets", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                       help="override hyperparameters: --set a=1 b=2, or --set repeated; unknown keys are an error")
        t.add_argument("--tiny", action="store_true",
                       help="the agent's tiny preset (small sizes for smoke tests), under any --set")
        if name == "train":
            t.add_argument("--out", required=True, help="run directory (resumed if it holds this run)")
            t.add_argument("--no-tracking", dest="tracking", action="store_false",
                           help="no MLflow run: write only the run directory (load it later with avem mlflow-import)")
    pr = sub.add_parser("probe", help="linear probes from a trained run's latent state (writes probe.csv)")
    pr.add_argument("--run", required=True, type=Path, help="trained run directory (config.yaml + checkpoint.pt)")
    pr.add_argument("--out", type=Path, default=None, help="output CSV (default: RUN/probe.csv)")
    pr.add_argument("--episodes", type=int, default=5, help="probe episodes; the last fifth is held out")
    pu = sub.add_parser("publish", help="drop machine-local paths from ended runs' run.json; print the files to commit")
    pu.add_argument("results_dir", type=Path, help="a study's results_dir (holding runs/)")
    pu.add_argument("--configfile", type=Path, default=None,
                    help="the study's config: hold back runs it does not expect and probed runs without probe.csv")
    mi = sub.add_parser("mlflow-import", help="load a results directory's ended runs into an MLflow store")
    mi.add_argument("results_dir", type=Path, help="a study's results_dir (holding runs/), e.g. results/reference")
    mi.add_argument("--tracking-uri", default=None,
                    help="MLflow store (default: sqlite:///RESULTS_DIR/mlflow/mlflow.db)")
    return p


def _shipped(args) -> int:
    """``publish`` and ``mlflow-import`` (``avem.results``)."""
    from avem import results

    if not (args.results_dir / "runs").is_dir():
        print(f"avem: error: {args.results_dir} holds no runs/ directory: give a study's results_dir", file=sys.stderr)
        return 2
    if args.command == "publish":
        study = None
        if args.configfile is not None:
            from avem.study import StudyError, load_study
            try:
                study = load_study(args.configfile)
            except (OSError, StudyError) as e:
                print(f"avem: error: {e}", file=sys.stderr)
                return 2
        files, held = results.publish(args.results_dir, study)
        print("\n".join(str(f) for f in files))
        for d, why in held:
            print(f"avem: {d}: {why}: do not commit it", file=sys.stderr)
        return 0
    done = results.import_runs(args.results_dir, args.tracking_uri)
    print(f"{len(done['imported'])} runs imported, {len(done['present'])} already in the store, "
          f"{len(done['skipped'])} not ended (skipped)")
    return 0


def main(argv: list[str] | None = None) -> int:
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `avem tasks | head` exits quietly
    args = _parser().parse_args(argv)
    from avem.agents import registry

    if args.command == "tasks":
        from avem.envs import list_tasks
        print("\n".join(list_tasks()))
        return 0
    if args.command == "agents":
        width = max(map(len, registry.names()))
        for name in registry.names():
            print(f"{name:<{width}}  {registry.get(name).description}")
        return 0

    if args.command in ("publish", "mlflow-import"):
        return _shipped(args)
    if args.command == "probe":
        from avem import probe
        from avem.train.checkpoint import CheckpointError
        try:
            rows = probe.probe_run(args.run, args.episodes)
        except (FileNotFoundError, KeyError, ValueError, CheckpointError) as e:
            print(f"avem: error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
            return 2
        out = args.out or args.run / rundir.PROBE
        probe.write_csv(rows, out)
        print(f"{out}: " + ", ".join(f"{r['target_group']} r2={r['r2']:.3f} ({r['status']})" for r in rows))
        return 0

    from avem.train import config as cfgmod
    try:
        run, agent_cfg = cfgmod.resolve(args.agent, args.task, args.seed, args.steps, cfgmod.parse_sets(args.sets),
                                       tiny=args.tiny)
        if args.command == "config":
            print(yaml.safe_dump(cfgmod.to_dict(run, agent_cfg), sort_keys=False), end="")
            return 0
        run.resolved_device()
        rundir.check_existing(Path(args.out), cfgmod.to_dict(run, agent_cfg))
    except (KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"avem: error: {msg}", file=sys.stderr)
        return 2
    from avem.train import faults
    from avem.train.checkpoint import CheckpointError
    from avem.train.loop import train
    try:
        result = train(run, agent_cfg, args.out, tracking=args.tracking)
    except faults.RunEnded as e:
        print(f"avem: {args.out}: {e}", file=sys.stderr)
        return e.exit_code
    except CheckpointError as e:
        print(f"avem: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {result.get('status')} (final eval return {result.get('final_eval_return')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
