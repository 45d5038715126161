from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from avem.nets.actor_critic import ActorCriticConfig
from avem.train.config import RunConfig, from_dict, parse_sets, resolve, to_dict

ROOT = Path(__file__).resolve().parents[1]


def test_resolve_applies_sets_with_types_and_resolves_action_repeat():
    run, cfg = resolve("sac", "cartpole-swingup-pos", seed=3, steps=2000,
                       sets=parse_sets(["eval_every=1000", "agent.actor_lr=1e-3", "hidden=64", "run.threads=1"]))
    assert run.seed == 3 and run.steps == 2000 and run.eval_every == 1000
    assert run.action_repeat == 8  # customary cartpole value, resolved
    ac = cfg.actor_critic
    assert ac.actor_lr == 1e-3 and isinstance(ac.actor_lr, float) and ac.hidden == 64
    assert cfg.frame_stack == 3  # the registry entry's default
    assert from_dict(to_dict(run, cfg)) == (run, cfg)


@pytest.mark.parametrize("section", ["run", "agent"])
def test_a_saved_config_with_fields_this_version_lacks_is_refused_by_name(section):
    run, cfg = resolve("sac", "cartpole-swingup-pos")
    data = to_dict(run, cfg)
    data[section]["retired_field"] = 1
    data["provenance"] = {"commit": "9b8ebde1b2536ab10cbe3bdc0555d6b59865b0a0"}
    with pytest.raises(ValueError, match=rf"{section} fields retired_field .* written at commit 9b8ebde1b253"):
        from_dict(data)


@pytest.mark.parametrize("items, message", [
    (["nonsense=1"], "unknown key 'nonsense'"),
    (["hidden"], "malformed --set"),
    (["=3"], "malformed --set"),
    (["hidden="], "malformed --set"),
    (["hidden=abc"], "expects int"),
    (["hidden=1.5"], "expects int"),
    (["learn_temperature=3"], "expects bool"),
    (["foo.hidden=3"], r"unknown key 'foo.hidden' .*valid keys: .*actor_critic.hidden"),
    (["run.hidden=3"], "unknown key 'run.hidden'; run keys: run.seed"),
    (["steps=-5"], "steps must be > 0"),
    (["eval_every=1001"], "not a multiple of the action repeat 8"),
    (["frame_stack=0"], "frame_stack must be >= 1"),
])
def test_bad_sets_are_refused(items, message):
    with pytest.raises(ValueError, match=message):
        resolve("sac", "cartpole-swingup-pos", sets=parse_sets(items))


@pytest.mark.parametrize("agent, item, message", [
    ("sac", "actor_critic.tau=0", r"^actor_critic.tau must be in \(0, 1\], got 0.0"),
    ("sac", "actor_critic.log_std_min=3", "^actor_critic: need log_std_min < log_std_max"),
    ("sb3-sac", "actor_critic.target_update_every=0", "target_update_every must be >= 1, got 0"),
    ("dreamer", "lambda_=1.5", r"^behaviour.lambda_ must be in \[0, 1\], got 1.5"),
    ("planet", "planner.plan_discount=0", r"plan_discount must be in \(0, 1\], got 0.0"),
    ("planet", "rssm.obs_scale=log", "obs_scale must be one of fixed, running, got 'log'"),
    ("avem-gen-ml-learned-plan", "planner.plan_min_ess=1", r"plan_min_ess must be in \[0, 1\), got 1.0"),
    ("avem-gen-ml-learned-plan", "prior.target_kl=-1", "target_kl must be > 0 or None, got -1.0"),
    ("avem-disc-uniform", "encoder.deter=0", "^encoder.deter must be >= 1, got 0"),
    ("sac", "action_repeat=16", "action_repeat=16 does not divide dm-control.s 1000-step episode"),
    ("avem-gen-elbo-uniform-noplan", "rssm.deter=0", "^rssm.deter must be >= 1, got 0"),
])
def test_every_config_block_checks_its_fields(agent, item, message):
    resolve(agent, "cartpole-swingup-pos")  # the defaults pass
    with pytest.raises(ValueError, match=message):
        resolve(agent, "cartpole-swingup-pos", sets=parse_sets([item]))


def test_range_rules_have_the_bounds_they_name():
    from avem.checks import at_least, fields, one_of, optional, positive, within
    closed, half_open, left_open = within(0, 1), within(0, 1, "[)"), within(0, 1, "(]")
    assert [closed.ok(v) for v in (-0.1, 0, 1, 1.1)] == [False, True, True, False]
    assert [half_open.ok(v) for v in (0, 0.999, 1)] == [True, True, False]
    assert [left_open.ok(v) for v in (0, 1e-9, 1)] == [False, True, True]
    assert (half_open.text, left_open.text) == ("in [0, 1)", "in (0, 1]")
    assert optional(positive).ok(None) and not optional(positive).ok(0.0) and at_least(2).ok(2)
    assert fields(ActorCriticConfig(hidden=0), hidden=at_least(1), gamma=one_of([0.99])) == [
        (False, "hidden must be >= 1, got 0"), (True, "gamma must be one of 0.99, got 0.99")]


def test_unknown_agent_and_task_list_what_exists():
    with pytest.raises(KeyError, match="registered agents: .*sac"):
        resolve("nope", "cartpole-swingup-pos")
    with pytest.raises(ValueError, match="cartpole"):
        resolve("sac", "nodomain-swingup-pos")
    with pytest.raises(ValueError, match="pos"):
        resolve("sac", "cartpole-swingup-xray")


def test_run_config_is_frozen():
    run = RunConfig(task="cartpole-swingup-pos", agent="sac")
    with pytest.raises(Exception):
        run.seed = 2


def test_cli_set_takes_several_items_after_one_flag_and_repeats(capsys):
    from avem import cli
    assert cli.main(["config", "--agent", "sac", "--task", "cartpole-swingup-pos", "--set", "hidden=32",
                     "batch_size=16", "--set", "actor_lr=1e-3"]) == 0
    out = capsys.readouterr().out
    assert "hidden: 32" in out and "batch_size: 16" in out and "actor_lr: 0.001" in out


def test_the_tiny_preset_applies_by_name_under_explicit_sets(capsys):
    """``tiny=True`` / ``--tiny`` / study ``tiny: true`` apply each block's ``tiny``; a --set wins."""
    from avem import cli
    from avem.agents import registry
    from avem.study import Study
    tiny = registry.get("planet").tiny()
    _, cfg = resolve("planet", "cartpole-swingup-pos", tiny=True, sets={"deter": 24})
    default = resolve("planet", "cartpole-swingup-pos")[1]
    assert cfg.rssm.deter == 24 and cfg.planner.plan_candidates == tiny["planner.plan_candidates"] != default.planner.plan_candidates
    assert cli.main(["config", "--agent", "sac", "--task", "cartpole-swingup-pos", "--tiny"]) == 0
    assert f"hidden: {registry.get('sac').tiny()['actor_critic.hidden']}" in capsys.readouterr().out
    base = dict(tasks=["cartpole-swingup-pos"], agents={"sac": None}, seeds=[0], steps=2000,
                eval={"every": 1000, "episodes": 1}, experiment="x", budgets=[2000])
    assert Study.from_config({**base, "tiny": True}).set_args("sac").startswith("--tiny ")
    assert "--tiny" not in Study.from_config(base).set_args("sac")


def test_a_block_shared_by_several_agents_defines_its_tiny_sizes_once():
    from avem.agents import registry
    from avem.models.rssm import RSSMConfig
    for name in ("planet", "dreamer", "avem-gen-ml-learned-plan", "avem-gen-elbo-uniform-noplan"):
        tiny = registry.get(name).tiny()
        assert {k: tiny[f"rssm.{k}"] for k in RSSMConfig.tiny} == RSSMConfig.tiny
    for name in ("sac", "sac-state", "sb3-sac", "avem-disc-uniform"):
        assert registry.get(name).tiny()["actor_critic.hidden"] == ActorCriticConfig.tiny["hidden"]


def test_dotted_and_bare_keys_name_one_field_of_the_agent():
    _, cfg = resolve("avem-gen-ml-learned-plan", "cartpole-swingup-pos",
                     sets=parse_sets(["rssm.deter=64", "plan_samples=8", "agent.ml.iw_samples=3", "hidden=16"]))
    assert (cfg.rssm.deter, cfg.planner.plan_samples, cfg.ml.iw_samples, cfg.actor_critic.hidden) == (64, 8, 3, 16)
    _, cfg = resolve("avem-disc-uniform", "cartpole-swingup-pos", sets={"deter": 64})
    assert cfg.encoder.deter == 64 and cfg.rssm is None
    # a switch set with the keys decides which blocks the other keys may name
    _, cfg = resolve("avem-gen-elbo-uniform-noplan", "cartpole-swingup-pos", sets={"planning": "true", "plan_samples": 8})
    assert cfg.planning and cfg.planner.plan_samples == 8


@pytest.mark.parametrize("agent, key", [("avem-disc-uniform", "planner.plan_samples"), ("avem-disc-uniform", "stoch"),
                                        ("avem-gen-elbo-uniform-noplan", "iw_samples"), ("sac", "rssm.deter")])
def test_a_key_of_a_block_the_agent_does_not_hold_is_refused_listing_the_valid_keys(agent, key):
    with pytest.raises(ValueError, match=rf"unknown key '{key}' .*valid keys: .*actor_critic\.hidden.*; run keys: run\.seed"):
        resolve(agent, "cartpole-swingup-pos", sets={key: "3"})


@dataclass(frozen=True)
class _TwoCritics:
    a: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    b: ActorCriticConfig = field(default_factory=ActorCriticConfig)


def test_an_ambiguous_bare_name_is_refused_naming_the_dotted_keys():
    from avem.agents import registry
    registry.register("throwaway-two-critics", lambda *a: None, _TwoCritics, "two blocks of one class")
    try:
        with pytest.raises(ValueError, match="key 'hidden' is ambiguous: write one of a.hidden, b.hidden"):
            resolve("throwaway-two-critics", "cartpole-swingup-pos", sets={"hidden": "8"})
        _, cfg = resolve("throwaway-two-critics", "cartpole-swingup-pos", sets={"b.hidden": "8"})
        assert (cfg.a.hidden, cfg.b.hidden) == (256, 8)
    finally:
        registry.unregister("throwaway-two-critics")


def test_avem_config_lists_only_what_the_agent_reads(capsys):
    from avem import cli
    assert cli.main(["config", "--agent", "avem-disc-uniform", "--task", "cartpole-swingup-pos"]) == 0
    agent = yaml.safe_load(capsys.readouterr().out)["agent"]
    assert set(agent) == {"model", "marginal_likelihood", "action_prior", "planning", "batch_size", "seq_len",
                          "critic_burn_in", "updates_per_step", "actor_critic", "encoder"}
    assert agent["encoder"] == {"deter": 128, "model_hidden": 128}


COMMITTED = sorted([*ROOT.glob("results/reference/runs/**/config.yaml"), *ROOT.glob("tests/data/**/config.yaml")])


ADDED_SINCE_FLAT = {"control_info_gain": True, "plan_info_gain_estimator": "contrastive"}
"""Agent fields added after the committed runs were written, with the default that reproduces those runs."""


def test_every_committed_run_config_loads_with_the_values_it_was_written_with():
    """The committed runs, written in the flat layout (every field at the top of ``agent``) or the nested one:
    each loads, every field its agent still holds keeps its value (a field added since a flat run takes the
    default that reproduces the run), and the nested form reads back the same."""
    from avem import config_tree
    assert len(COMMITTED) >= 26
    assert any(isinstance(v, dict) for p in COMMITTED for v in yaml.safe_load(p.read_text())["agent"].values())
    for path in COMMITTED:
        data = yaml.safe_load(path.read_text())
        run, cfg = from_dict(data)
        nested = to_dict(run, cfg)
        held = {k.rsplit(".", 1)[-1]: v for k, v in config_tree.flatten(nested["agent"]).items()}
        leaves = {k.rsplit(".", 1)[-1]: v for k, v in config_tree.flatten(data["agent"]).items()}
        written = {k: (list(v) if isinstance(v, tuple) else v) for k, v in leaves.items() if k in held}
        assert written == {k: held[k] for k in written}, path
        assert {k: held[k] for k in set(held) - set(leaves)}.items() <= ADDED_SINCE_FLAT.items(), path
        assert from_dict(nested) == (run, cfg), path


def test_a_run_written_in_the_flat_layout_is_the_same_run_in_the_nested_one(tmp_path):
    """``avem train`` started again on a directory whose config.yaml predates the blocks finds the same run
    (finished here), and a run of another configuration is still refused."""
    import shutil
    from avem.train import rundir
    src = ROOT / "tests/data/reference_subset/runs/cartpole-swingup-pos/sac/seed0"
    out = tmp_path / "run"
    shutil.copytree(src, out)
    run, cfg = from_dict(yaml.safe_load((out / "config.yaml").read_text()))
    assert rundir.check_existing(out, to_dict(run, cfg)) == "finished"
    other = resolve("sac", run.task, run.seed, run.steps, {"hidden": "64"})
    with pytest.raises(rundir.RunDirError, match="another configuration"):
        rundir.check_existing(out, to_dict(*other))
