"""Tests for avem.envs: task table, obs modes, seeding, RNG checkpoints, episode bookkeeping."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from avem.envs import OBS_MODES, list_tasks, make_env, parse_task_id
from avem.envs.dmc import rescale_action
from avem.envs.tasks import ACTION_REPEAT, CAMERA_ID, VELOCITY_KEYS, domains, tasks_of

# pos obs sizes read off dm-control 1.0.50's observation_spec() minus the velocity keys
POS_DIMS = {"cartpole": 3, "pendulum": 2, "reacher": 4, "cheetah": 8, "finger": 6,
            "ball_in_cup": 4, "walker": 15}
REQUIRED = {"cartpole-swingup": 8, "reacher-easy": 4, "cheetah-run": 4, "finger-spin": 2,
            "ball_in_cup-catch": 4, "walker-walk": 2, "pendulum-swingup": 2}


def rollout(env, actions, seed=None):
    """Reset (with ``seed`` if given) and step through ``actions`` -> (obs list, rewards, states)."""
    obs, info = env.reset(seed=seed)
    observations, rewards, states = [obs], [], [info["state"]]
    for action in actions:
        obs, reward, _, _, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        states.append(info["state"])
    return np.stack(observations), np.array(rewards), np.stack(states)


def random_actions(env, n, seed=0):
    """``(n, act_dim)`` float32 uniform actions in [-1, 1]."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n,) + env.action_space.shape).astype(np.float32)


@pytest.mark.parametrize("task_id, must_list", [
    ("hopper-hop-full", domains()),
    ("cartpole-three_poles-full", tasks_of("cartpole")),
    ("cartpole-swingup-velocity", list(OBS_MODES)),
])
def test_unknown_part_error_lists_what_exists(task_id, must_list):
    with pytest.raises(ValueError) as err:
        parse_task_id(task_id)
    for name in must_list:
        assert name in str(err.value)


def test_malformed_id_raises():
    with pytest.raises(ValueError, match="DOMAIN-TASK-OBS"):
        parse_task_id("cartpole-swingup")


def test_list_tasks_covers_tasks_and_modes():
    ids = list_tasks()
    assert ids == sorted(ids)
    for name, repeat in REQUIRED.items():
        for mode in OBS_MODES:
            spec = parse_task_id(f"{name}-{mode}")
            assert spec.id in ids and spec.obs == mode and spec.action_repeat == repeat
    assert len(ids) == len(ACTION_REPEAT) * len(OBS_MODES) >= 7 * 6
    assert set(CAMERA_ID) == set(VELOCITY_KEYS) == set(domains())


@pytest.mark.parametrize("domain", sorted(VELOCITY_KEYS))
def test_pos_removes_exactly_the_velocity_keys(domain):
    task = tasks_of(domain)[0]
    full = make_env(f"{domain}-{task}-full", 0)
    obs_spec = full._dmc.observation_spec()
    velocity_size = 0
    for key in VELOCITY_KEYS[domain]:
        assert key in obs_spec, f"{domain}: {key} not in {sorted(obs_spec)}"
        velocity_size += int(np.prod(obs_spec[key].shape))
    pos = make_env(f"{domain}-{task}-pos", 0)
    pos_obs, info = pos.reset()
    assert pos_obs.shape == (full.observation_space.shape[0] - velocity_size,) == pos.observation_space.shape
    assert pos_obs.shape == (POS_DIMS[domain],)
    # the pos obs is the full state (sorted keys) minus the velocity entries
    starts = np.cumsum([0] + [int(np.prod(obs_spec[k].shape)) for k in sorted(obs_spec)])
    kept = np.concatenate([info["state"][starts[i]:starts[i + 1]] for i, k in enumerate(sorted(obs_spec))
                           if k not in VELOCITY_KEYS[domain]])
    np.testing.assert_array_equal(pos_obs, kept)


def test_flicker_zeroes_whole_vector_at_flicker_prob():
    env = make_env("cartpole-swingup-flicker", 0, action_repeat=1, flicker_prob=0.3)
    obs, _, states = rollout(env, random_actions(env, 600))
    zeroed = np.all(obs == 0, axis=1)
    np.testing.assert_array_equal(obs[~zeroed], states[~zeroed])  # otherwise untouched
    assert abs(zeroed.mean() - 0.3) < 0.06
    never, _, _ = rollout(make_env("cartpole-swingup-flicker", 0, flicker_prob=0.0), random_actions(env, 20))
    always, _, _ = rollout(make_env("cartpole-swingup-flicker", 0, flicker_prob=1.0), random_actions(env, 20))
    assert np.all(never != 0, axis=1).all() and np.all(always == 0)


def test_noisy_adds_gaussian_noise_of_noise_std():
    env = make_env("walker-walk-noisy", 0, noise_std=0.5)
    obs, _, states = rollout(env, random_actions(env, 100))
    noise = obs - states
    assert abs(noise.std() - 0.5) < 0.03 and abs(noise.mean()) < 0.03
    clean, _, clean_states = rollout(make_env("walker-walk-noisy", 0, noise_std=0.0), random_actions(env, 5))
    np.testing.assert_array_equal(clean, clean_states)


def test_distractors_are_bounded_and_ignore_the_task():
    env_a, env_b = make_env("cartpole-swingup-distract", 0), make_env("cartpole-swingup-distract", 0)
    obs_a, _, states_a = rollout(env_a, random_actions(env_a, 100, seed=1))
    obs_b, _, states_b = rollout(env_b, random_actions(env_b, 100, seed=2))
    dist = obs_a[:, env_a.obs_distract_slice]
    assert dist.shape == (101, 4) and np.all(np.abs(dist) <= 1) and dist.std(axis=0).min() > 0.3
    np.testing.assert_array_equal(dist, states_a[:, env_a.distract_slice])
    np.testing.assert_array_equal(dist, obs_b[:, env_b.obs_distract_slice])  # same seed, other actions
    assert not np.allclose(states_a[:, :env_a.distract_slice.start], states_b[:, :env_b.distract_slice.start])


@pytest.mark.parametrize("mode", ["full", "flicker", "noisy", "distract"])
def test_same_seed_same_episode_different_seed_differs(mode):
    task_id = f"ball_in_cup-catch-{mode}"
    env_a, env_b, env_c = make_env(task_id, 3), make_env(task_id, 3), make_env(task_id, 4)
    actions = random_actions(env_a, 30)
    obs_a, rew_a, st_a = rollout(env_a, actions)
    obs_b, rew_b, st_b = rollout(env_b, actions)
    obs_c, _, _ = rollout(env_c, actions)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    np.testing.assert_array_equal(st_a, st_b)
    assert not np.array_equal(obs_a, obs_c)


def test_reset_seed_reseeds_and_constructor_seed_is_used_first():
    env = make_env("cartpole-swingup-noisy", 0)
    actions = random_actions(env, 10)
    first = rollout(make_env("cartpole-swingup-noisy", 7), actions)
    again = rollout(env, actions, seed=7)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    continued = rollout(env, actions)  # no seed: streams continue, so a new episode
    assert not np.array_equal(continued[0], again[0])


@pytest.mark.parametrize("mode", ["distract", "flicker"])
def test_rng_state_restore_reproduces_next_episode(mode):
    task_id = f"cartpole-swingup-{mode}"
    env = make_env(task_id, 5)
    actions = random_actions(env, 125)
    rollout(env, actions)  # one whole episode (125 steps at action repeat 8)
    saved = pickle.dumps(env.get_rng_state())
    expected = rollout(env, actions[:40])
    restored = make_env(task_id, 5)
    restored.set_rng_state(pickle.loads(saved))
    assert pickle.dumps(restored.get_rng_state()) == saved  # every part round-trips
    for x, y in zip(expected, rollout(restored, actions[:40])):
        np.testing.assert_array_equal(x, y)
    unrestored = rollout(make_env(task_id, 5), actions[:40])
    assert not np.array_equal(unrestored[2], expected[2])


@pytest.mark.parametrize("action_repeat, n_steps", [(None, 125), (3, 334)])
def test_episode_length_rewards_and_truncation(action_repeat, n_steps):
    env = make_env("cartpole-swingup-full", 0, action_repeat=action_repeat)
    _, info = env.reset()
    assert info["sim_steps"] == 0
    total, sim_steps, steps, done = 0.0, 0, 0, False
    actions = random_actions(env, 400)
    while not done:
        _, reward, terminated, truncated, info = env.step(actions[steps])
        assert 0.0 <= reward <= env.task_spec.action_repeat and not terminated
        total, sim_steps, steps, done = total + reward, sim_steps + info["sim_steps"], steps + 1, truncated
    assert steps == n_steps and sim_steps == 1000 and 0.0 <= total <= 1000.0
    with pytest.raises(RuntimeError):
        env.step(actions[0])


def test_action_repeat_override_and_clipping():
    env = make_env("cartpole-swingup-full", 0, action_repeat=5)
    assert env.task_spec.action_repeat == 5
    env.reset()
    assert env.step(np.ones(1, np.float32))[4]["sim_steps"] == 5
    a, b = make_env("cartpole-swingup-full", 0), make_env("cartpole-swingup-full", 0)
    a.reset(), b.reset()
    np.testing.assert_array_equal(a.step([1.0])[0], b.step([7.0])[0])  # out-of-range actions are clipped


def test_rescale_action_maps_unit_box_to_bounds():
    low, high = np.array([0.0, -2.0]), np.array([1.0, 4.0])
    np.testing.assert_allclose(rescale_action(np.array([-1.0, 1.0]), low, high), [0.0, 4.0])
    np.testing.assert_allclose(rescale_action(np.array([0.0, 0.0]), low, high), [0.5, 1.0])
    np.testing.assert_allclose(rescale_action(np.array([5.0, -5.0]), low, high), [1.0, -2.0])


@pytest.mark.parametrize("kwargs", [
    {"flicker_prob": -0.1}, {"flicker_prob": 1.5}, {"flicker_prob": float("nan")},
    {"noise_std": -1.0}, {"noise_std": float("inf")},
    {"action_repeat": 0}, {"action_repeat": 2.5}, {"distract_dims": 0},
    {"pixel_size": 0}, {"pixel_size": 100_000}, {"seed": -1}, {"seed": 2**32}, {"seed": 1.5},
    {"render_mode": "human"},
])
def test_bad_arguments_raise_value_error(kwargs):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ValueError):
        make_env("cartpole-swingup-distract", **kwargs)


def test_reset_rejects_bad_seed():
    with pytest.raises(ValueError):
        make_env("cartpole-swingup-full", 0).reset(seed=-3)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("task_id", [f"cartpole-swingup-{m}" for m in OBS_MODES if m != "pixels"]
                         + ["walker-walk-distract", "finger-spin-pos"])
def test_gymnasium_check_env(task_id):
    check_env(make_env(task_id, 0))


@pytest.fixture(scope="module")
def can_render():
    """Skip unless dm-control can render here (needs libegl1 libegl-mesa0, MUJOCO_GL=egl)."""
    try:
        make_env("cartpole-swingup-pixels", 0, pixel_size=8).reset()
    except Exception as exc:  # noqa: BLE001  any GL failure means no rendering here
        pytest.skip(f"rendering unavailable ({type(exc).__name__}: {exc}); "
                    "apt-get install libegl1 libegl-mesa0 and set MUJOCO_GL=egl")


@pytest.mark.pixels
def test_pixels_observations(can_render):
    env = make_env("cartpole-swingup-pixels", 0, pixel_size=32, render_mode="rgb_array")
    obs, _, states = rollout(env, random_actions(env, 10))
    assert obs.shape == (11, 3, 32, 32) and obs.dtype == np.float32
    assert obs.min() >= 0 and obs.max() <= 1 and obs[0].std() > 0
    assert not np.array_equal(obs[0], obs[-1]) and states.shape == (11, 5)
    twin, _, _ = rollout(make_env("cartpole-swingup-pixels", 0, pixel_size=32), random_actions(env, 10))
    np.testing.assert_array_equal(obs, twin)
    frame = env.render()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8


def test_observation_noise_has_a_stream_of_its_own():
    """The sensor noise does not repeat the numbers of a generator seeded with the run's seed (an agent's replay
    sampling), and stays reproducible from the seed."""
    env = make_env("cartpole-swingup-noisy", 0, action_repeat=1, noise_std=0.1)
    env.reset(seed=5)
    first = env.np_random.random(4)
    assert not np.allclose(first, np.random.default_rng(5).random(4))
    env.reset(seed=5)
    np.testing.assert_array_equal(env.np_random.random(4), first)
