"""A study: tasks x agents x seeds at one budget, expanded and validated before any job runs.

The Snakemake workflow (``workflows/rules/common.smk``) checks its config's shape with
``validate_config`` (``snakemake.utils.validate`` against ``workflows/config/schema.yaml``),
builds a ``Study`` from it and calls ``Study.check()``, which resolves every (task, agent) pair
through ``avem.train.config.resolve`` exactly as ``avem train`` will. So an unknown task or
agent, an unknown key, a wrong type or an invalid switch combination fails at DAG-building time
with a message naming the config entry. Only ``validate_config`` imports Snakemake; tests call
everything directly.

Also here: the tracking store (``default_tracking_uri``: one SQLite store per results
directory; ``create_store``: the store and the experiment, created once before any training
job starts), and the figure manifest (its writer and reader).
"""
from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avem.train import rundir
from avem.variants import study_agent

RESERVED_SETS = ("task", "agent", "seed", "experiment")
"""Run keys a study sets itself: an agent's ``set`` may not override them."""


class StudyError(ValueError):
    """An invalid study config; the message names every offending entry, one per line."""


@dataclass(frozen=True)
class AgentEntry:
    """One ``agents:`` entry: a registry name, its ``--set`` overrides and its job resources."""

    name: str
    """The label of its runs (their directory): a registry name, or ``NAME.TAG`` for a variant of registered
    agent NAME with this entry's ``set`` (``avem.variants.study_agent``)."""
    sets: dict = field(default_factory=dict)
    """``--set`` overrides (run or agent keys) for this agent only, applied over the study's ``set``."""
    resources: dict = field(default_factory=dict)
    """``mem_mb`` / ``runtime`` (minutes) / ``gres`` / ``slurm_extra`` of its training jobs, over the study's
    ``resources.train`` (``gres``, ``slurm_extra``: the SLURM executor's resources, e.g. a GPU)."""
    preset: str = ""
    """A named departure from the paper's setting (e.g. a CPU size); shown in the figures' captions."""
    seeds: tuple[int, ...] = ()
    """This agent's seeds, replacing the study's (e.g. more seeds for a controlled pair); () = the study's."""

    @property
    def registered(self) -> str:
        """The registered agent its runs train (``avem train --agent``)."""
        return study_agent(self.name)[0]

    @property
    def set_text(self) -> str:
        """Its ``set`` as ``key=value; ...`` (sorted keys, values as ``--set`` reads them): ``expected.csv``'s
        ``set`` column, from which the analysis pairs study variants (``analysis.agents.parse_set``)."""
        return "; ".join(f"{k}={_cli_value(v)}" for k, v in sorted(self.sets.items()))


@dataclass(frozen=True)
class Run:
    """One expected training run (its identity is its output path)."""

    task: str
    agent: str
    seed: int

    def path(self, runs_dir: str | Path) -> Path:
        return rundir.run_path(runs_dir, self.task, self.agent, self.seed)


@dataclass(frozen=True)
class Study:
    """The study a config describes (already schema-validated, defaults filled)."""

    tasks: tuple[str, ...]
    agents: tuple[AgentEntry, ...]
    seeds: tuple[int, ...]
    steps: int
    eval_every: int
    eval_episodes: int
    experiment: str
    budgets: tuple[int, ...]
    sets: dict
    threads: int
    train_resources: dict
    probe_agents: tuple[str, ...]
    probe_tasks: tuple[str, ...]
    tiny: bool = False
    """Every agent at its ``tiny`` preset (``avem train --tiny``): the quick and CI studies."""

    @classmethod
    def from_config(cls, config: dict) -> "Study":
        agents = []
        for name, entry in config["agents"].items():
            entry = entry or {}
            agents.append(AgentEntry(str(name), dict(entry.get("set") or {}), dict(entry.get("resources") or {}),
                                     str(entry.get("preset") or ""), tuple(int(s) for s in entry.get("seeds") or ())))
        probe = config.get("probe") or {}
        tasks = tuple(config["tasks"])
        return cls(tasks=tasks, agents=tuple(agents), seeds=tuple(int(s) for s in config["seeds"]),
                   steps=int(config["steps"]), eval_every=int(config["eval"]["every"]),
                   eval_episodes=int(config["eval"]["episodes"]), experiment=str(config["experiment"]),
                   budgets=tuple(int(b) for b in config.get("budgets") or ()),
                   sets=dict(config.get("set") or {}), threads=int(config.get("threads", 1)),
                   train_resources=dict((config.get("resources") or {}).get("train") or {}),
                   probe_agents=tuple(probe.get("agents") or ()),
                   probe_tasks=tuple(probe["tasks"]) if probe.get("tasks") is not None else tasks,
                   tiny=bool(config.get("tiny", False)))

    # ---- expansion ------------------------------------------------------------------------
    @property
    def agent_names(self) -> list[str]:
        return [a.name for a in self.agents]

    def agent(self, name: str) -> AgentEntry:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(f"agent {name!r} is not in this study; study agents: {self.agent_names}")

    def expected_rows(self) -> list[tuple[str, str, int, str, str]]:
        """``(task, agent, seed, preset, set)`` of every expected run: the rows of ``expected.csv``."""
        entries = {a.name: a for a in self.agents}
        return [(r.task, r.agent, r.seed, entries[r.agent].preset, entries[r.agent].set_text) for r in self.runs()]

    def runs(self) -> list[Run]:
        """Every expected run, in config order (task, agent, seed)."""
        return [Run(t, a.name, s) for t in self.tasks for a in self.agents for s in self.seeds_of(a.name)]

    def seeds_of(self, agent: str) -> tuple[int, ...]:
        """``agent``'s seeds: its entry's ``seeds`` if given, else the study's."""
        return self.agent(agent).seeds or self.seeds

    def probe_runs(self) -> list[Run]:
        """The runs whose latent state is probed (``probe.agents`` x ``probe.tasks``)."""
        return [r for r in self.runs() if r.agent in self.probe_agents and r.task in self.probe_tasks]

    def run_sets(self, agent: str) -> dict[str, Any]:
        """The ``--set`` overrides of ``agent``'s runs: study schedule, study ``set``, then the agent's."""
        return {"eval_every": self.eval_every, "eval_episodes": self.eval_episodes, "threads": self.threads,
                "experiment": self.experiment, **self.sets, **self.agent(agent).sets}

    def steps_of(self, agent: str) -> int:
        """The budget of ``agent``'s runs (its ``set: {steps: N}`` if given, else the study's)."""
        return int(self.run_sets(agent).get("steps", self.steps))

    def set_args(self, agent: str) -> str:
        """``[--tiny] --set k=v ...`` for the command line, shell-quoted (``steps`` is passed as ``--steps``)."""
        items = [f"{k}={_cli_value(v)}" for k, v in self.run_sets(agent).items() if k != "steps"]
        return " ".join(["--tiny"] * self.tiny + [f"--set {shlex.quote(i)}" for i in items])

    def registered_of(self, agent: str) -> str:
        """The registered agent of study label ``agent`` (``avem train --agent``)."""
        return self.agent(agent).registered

    def threads_of(self, agent: str) -> int:
        return int(self.run_sets(agent).get("threads", self.threads))

    def resources_of(self, agent: str) -> dict:
        return {**self.train_resources, **self.agent(agent).resources}

    # ---- validation -----------------------------------------------------------------------
    def _gpu_errors(self, agent: str, run, reported: set[str]) -> list[str]:
        """A training job that asks SLURM for a GPU but would run on the CPU (said once per agent): ``device=cpu``,
        or an agent whose constructor takes no device (``auto`` resolves to the CPU for it)."""
        from avem.agents import registry

        if not asks_for_gpu(self.resources_of(agent)) or "gpu" in reported:
            return []
        if run.device != "cpu" and registry.takes_device(run.agent):
            return []
        reported.add("gpu")
        if run.device == "cpu":
            return [f"agents.{agent}: its training jobs ask for a GPU (resources) but would run on the CPU: "
                    "add set: {device: cuda}"]
        return [f"agents.{agent}: its training jobs ask for a GPU (resources) but agent {run.agent!r} cannot run on "
                "CUDA (its constructor takes no device argument)"]

    def check(self) -> None:
        """Resolve every (task, agent) as ``avem train`` will; raise ``StudyError`` listing every problem."""
        _import_quietly()
        good_tasks, good_agents, errors = self._entry_errors()
        if errors:  # resolving every pair would only repeat these
            raise StudyError(_format(errors))
        for entry in good_agents:
            errors += self._resolve_errors(entry, good_tasks)
        if errors:
            raise StudyError(_format(errors))

    def _entry_errors(self) -> tuple[list[str], list[AgentEntry], list[str]]:
        """``(valid tasks, valid agent entries, errors)``: task ids, agent names, reserved keys, probe lists."""
        from avem.agents import registry
        from avem.envs import parse_task_id
        errors: list[str] = []
        good_tasks = []
        for task in self.tasks:
            try:
                parse_task_id(task)
                good_tasks.append(task)
            except ValueError as e:
                errors.append(f"tasks: {task!r}: {e}")
        good_agents = []
        for entry in self.agents:
            where = f"agents.{entry.name}"
            try:
                registry.get(entry.registered)
            except KeyError as e:
                errors.append(f"{where}: {e.args[0]}")
                continue
            if entry.registered != entry.name and not entry.sets:
                errors.append(f"{where}: a variant NAME.TAG needs a `set:` that makes it differ from {entry.registered}")
                continue
            reserved = sorted(set(entry.sets) & set(RESERVED_SETS))
            if reserved:
                errors.append(f"{where}.set: {reserved} are set by the study itself, not per agent")
                continue
            good_agents.append(entry)
        reserved = sorted(set(self.sets) & set(RESERVED_SETS))
        if reserved:
            errors.append(f"set: {reserved} are set by the study itself (tasks, agents, seeds, experiment)")
        errors += [f"probe.agents: {name!r} is not one of the study's agents {self.agent_names}"
                   for name in self.probe_agents if name not in self.agent_names]
        errors += [f"probe.tasks: {task!r} is not one of the study's tasks {list(self.tasks)}"
                   for task in self.probe_tasks if task not in self.tasks]
        return good_tasks, good_agents, errors

    def _resolve_errors(self, entry: AgentEntry, tasks: list[str]) -> list[str]:
        """Problems of ``entry`` on ``tasks`` as ``avem train`` would resolve it (each message once), and budgets
        that are not one of its evaluation steps."""
        from avem.train.config import resolve
        where, errors, reported = f"agents.{entry.name}", [], set()
        steps = self.steps_of(entry.name)
        sets = {k: v for k, v in self.run_sets(entry.name).items() if k != "steps"}
        for task in tasks:
            try:
                run, _ = resolve(entry.registered, task, self.seeds[0], steps, sets, tiny=self.tiny)
            except (KeyError, ValueError) as e:
                msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
                if msg not in reported:  # the same bad override fails on every task: say it once
                    reported.add(msg)
                    errors.append(f"{where} on task {task!r}: {msg}")
                continue
            errors += self._gpu_errors(entry.name, run, reported)
            evals = set(range(0, run.steps + 1, run.eval_every)) | {run.steps}
            errors += [f"budgets: {b} is not an evaluation step of agent {entry.name!r} on task {task!r} "
                       f"(steps={run.steps}, eval_every={run.eval_every})" for b in self.budgets if b not in evals]
        return errors


def _import_quietly() -> None:
    """Import what ``check`` needs; absl (via dm-control) configures the root logger on import: undo it, or
    every Snakemake log line prints twice."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    import avem.agents  # noqa: F401
    import avem.envs  # noqa: F401
    import avem.train.config  # noqa: F401
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)


def asks_for_gpu(resources: dict) -> bool:
    """Whether job ``resources`` ask SLURM for a GPU (``gres`` or ``slurm_extra`` naming one)."""
    return any("gpu" in str(resources.get(k) or "") for k in ("gres", "slurm_extra"))


def _format(errors: list[str]) -> str:
    head = f"invalid study config ({len(errors)} problem{'s' if len(errors) > 1 else ''}):"
    return "\n".join([head, *(f"  - {e}" for e in errors)])


def _cli_value(v: Any) -> str:
    """A config value as ``avem train --set`` reads it back (YAML scalars and flow lists)."""
    if isinstance(v, str):
        return v
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()


def validate_config(config: dict, schema: str | Path) -> dict:
    """``snakemake.utils.validate`` (defaults filled in), with the error cut to one line that
    names the offending entry, e.g. ``seeds[1]: 'one' is not of type 'integer'``."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(Path(schema).resolve()))
    except WorkflowError as e:
        cause = e.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        where = cause.json_path.removeprefix("$").removeprefix(".") or "(top level)"
        raise StudyError(f"invalid study config: {where}: {cause.message}") from None
    return config


SCHEMA = Path(__file__).resolve().parents[1] / "workflows" / "config" / "schema.yaml"
"""The study config schema (the repository's; an installed package reads it from the clone it came from)."""


def load_study(path: str | Path) -> "Study":
    """A study config file, schema-validated and expanded as the workflow does (``StudyError`` if invalid)."""
    config = yaml.safe_load(Path(path).read_text())
    if not isinstance(config, dict):
        raise StudyError(f"invalid study config: {path} does not hold a mapping")
    return Study.from_config(validate_config(config, SCHEMA))


# ---- the tracking store ------------------------------------------------------------------
def default_tracking_uri(results_dir: str | Path) -> str:
    """``sqlite:///<abs results_dir>/mlflow/mlflow.db``: one store for every job of a study."""
    return f"sqlite:///{(Path(results_dir) / 'mlflow' / 'mlflow.db').resolve()}"


def create_store(uri: str, experiment: str, marker: str | Path) -> dict:
    """Create the store (schema migrations run once, here) and the experiment; write ``marker``.

    Idempotent. Run before any training job so concurrent jobs never race on schema or
    experiment creation. ``marker`` (JSON: uri, experiment, experiment_id) is what jobs depend on.
    """
    from avem.train.tracking import ensure_experiment

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    info = {"tracking_uri": uri, "experiment": experiment, "experiment_id": ensure_experiment(uri, experiment)}
    Path(marker).parent.mkdir(parents=True, exist_ok=True)
    Path(marker).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


# ---- the figure manifest (written by ``python -m analysis figures``, read by the workflow) -----
MANIFEST = "manifest.json"
"""The manifest's file name in the figures directory: ``[{"file": name, "caption": text}, ...]``,
one entry per figure file, ``name`` relative to that directory."""
REPORT_SUFFIXES = (".png", ".svg", ".csv")
"""Manifest files shown in the Snakemake report (PDF and Markdown twins are left out)."""


def write_manifest(out_dir: str | Path, items) -> list[dict]:
    """Write ``out_dir/manifest.json`` from ``(file name, caption)`` pairs; returns its entries."""
    manifest = [{"file": name, "caption": caption} for name, caption in items]
    (Path(out_dir) / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(path: str | Path) -> dict[str, dict]:
    """``{report name: {"path": file, "caption": text}}`` for every reportable file in the manifest.

    The manifest is the list :func:`write_manifest` writes; relative paths are relative to its
    directory. Another shape, an entry naming no file, a listed file that does not exist, or
    two files with one name raise ``ValueError``.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: manifest must be a list of {{'file', 'caption'}} entries, got {type(data).__name__}")
    items = []
    for item in data:
        if not isinstance(item, dict) or not item.get("file"):
            raise ValueError(f"{path}: manifest entry {item!r} names no file")
        items.append((item["file"], item.get("caption", "")))
    out: dict[str, dict] = {}
    for name, caption in items:
        p = Path(name) if Path(name).is_absolute() else path.parent / name
        if p.suffix.lower() not in REPORT_SUFFIXES:
            continue
        if not p.exists():
            raise ValueError(f"{path}: lists {name!r}, which does not exist")
        kind = "figures" if p.suffix.lower() != ".csv" else "tables"
        key = f"{kind}/{p.name}"
        if key in out and out[key]["path"] != str(p):
            raise ValueError(f"{path}: two files named {p.name!r} ({out[key]['path']}, {p})")
        out[key] = {"path": str(p), "caption": str(caption or "").strip()}
    return out

