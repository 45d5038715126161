import pytest

from avem.train.config import RunConfig, from_dict, parse_sets, resolve, to_dict


def test_resolve_applies_sets_with_types_and_resolves_action_repeat():
    run, cfg = resolve("sac", "cartpole-swingup-pos", seed=3, steps=2000,
                       sets=parse_sets(["eval_every=1000", "agent.actor_lr=1e-3", "hidden=64", "run.threads=1"]))
    assert run.seed == 3 and run.steps == 2000 and run.eval_every == 1000
    assert run.action_repeat == 8  # customary cartpole value, resolved
    assert cfg.actor_lr == 1e-3 and isinstance(cfg.actor_lr, float) and cfg.hidden == 64
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
    (["foo.hidden=3"], "prefix must be"),
    (["steps=-5"], "steps must be > 0"),
    (["eval_every=1001"], "not a multiple of the action repeat 8"),
    (["frame_stack=0"], "frame_stack must be >= 1"),
])
def test_bad_sets_are_refused(items, message):
    with pytest.raises(ValueError, match=message):
        resolve("sac", "cartpole-swingup-pos", sets=parse_sets(items))


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
    """``tiny=True`` / ``--tiny`` / study ``tiny: true`` apply the config class's ``tiny_overrides``; a --set wins."""
    from avem import cli
    from avem.agents import registry
    from avem.study import Study
    tiny = registry.get("planet").tiny()
    _, cfg = resolve("planet", "cartpole-swingup-pos", tiny=True, sets={"deter": 24})
    assert cfg.deter == 24 and cfg.plan_candidates == tiny["plan_candidates"] != resolve("planet", "cartpole-swingup-pos")[1].plan_candidates
    assert cli.main(["config", "--agent", "sac", "--task", "cartpole-swingup-pos", "--tiny"]) == 0
    assert f"hidden: {registry.get('sac').tiny()['hidden']}" in capsys.readouterr().out
    base = dict(tasks=["cartpole-swingup-pos"], agents={"sac": None}, seeds=[0], steps=2000,
                eval={"every": 1000, "episodes": 1}, experiment="x", budgets=[2000])
    assert Study.from_config({**base, "tiny": True}).set_args("sac").startswith("--tiny ")
    assert "--tiny" not in Study.from_config(base).set_args("sac")
