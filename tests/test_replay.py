import numpy as np
import pytest

from avem.train.replay import ReplayBuffer


def _fill(buf, episodes, length, start=0.0):
    v = start
    for e in range(episodes):
        buf.add(np.full(2, v), None, 0.0, True, False)
        for t in range(length):
            v += 1
            buf.add(np.full(2, v), np.full(1, v), v, False, False)
    return buf


def test_windows_stay_inside_episodes():
    buf = _fill(ReplayBuffer((2,), 1, capacity=3), episodes=3, length=4)  # grows past capacity
    assert buf.size == 15 and buf.num_windows(5) == 3 and buf.num_windows(6) == 0
    s = buf.sample(np.random.default_rng(0), 64, 5)
    assert s["obs"].shape == (64, 5, 2) and s["action"].shape == (64, 5, 1)
    assert s["is_first"][:, 0].all() and not s["is_first"][:, 1:].any()
    # consecutive rows: values increase by exactly one inside a window
    assert np.all(np.diff(s["obs"][..., 0], axis=1) == 1)


def test_row_convention_and_uniform_coverage():
    buf = _fill(ReplayBuffer((2,), 1), episodes=2, length=3)
    s = buf.sample(np.random.default_rng(1), 4000, 2)
    # action stored in row t+1 led from obs_t to obs_{t+1}; reward came with obs_{t+1}
    assert np.all(s["action"][:, 1, 0] == s["obs"][:, 1, 0]) and np.all(s["reward"][:, 1] == s["obs"][:, 1, 0])
    firsts, counts = np.unique(s["obs"][:, 0, 0], return_counts=True)
    assert len(firsts) == 6  # 3 windows per episode x 2 episodes
    assert counts.min() > 4000 / 6 * 0.8


def test_state_dict_roundtrip_and_errors():
    buf = _fill(ReplayBuffer((2,), 1), episodes=2, length=3)
    other = ReplayBuffer((2,), 1)
    other.load_state_dict(buf.state_dict())
    a = buf.sample(np.random.default_rng(3), 8, 3)
    b = other.sample(np.random.default_rng(3), 8, 3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="no window"):
        ReplayBuffer((2,), 1).sample(np.random.default_rng(0), 1, 2)
    with pytest.raises(ValueError, match="is_first"):
        ReplayBuffer((2,), 1).add(np.zeros(2), np.zeros(1), 0.0, False, False)


def test_extras_are_stored_with_their_row_and_nan_elsewhere():
    """An extra's column appears with its first value; earlier rows, first rows and rows added without it are NaN;
    it survives growth, sampling and the state-dict round trip."""
    buf = ReplayBuffer((2,), 1, capacity=2)
    buf.add(np.zeros(2), None, 0.0, True, False, {"q": np.array([9.0, 9.0])})  # first row: ignored
    buf.add(np.ones(2), np.ones(1), 1.0, False, False)
    for t in range(2, 6):  # grows past capacity with the extra present
        buf.add(np.full(2, t), np.full(1, t), float(t), False, False, {"q": np.array([t, -t])})
    assert buf.extras() == ["q"]
    q = buf.data["q"][: buf.size]
    assert np.isnan(q[:2]).all() and np.array_equal(q[2:], [[t, -t] for t in range(2, 6)])
    s = buf.sample(np.random.default_rng(0), 16, 3)
    assert s["q"].shape == (16, 3, 2)
    ok = ~np.isnan(s["q"][..., 0])
    assert np.array_equal(s["q"][..., 0][ok], s["obs"][..., 0][ok])  # stored with the action of its own row
    clone = ReplayBuffer((2,), 1)
    clone.load_state_dict(buf.state_dict())
    assert np.array_equal(clone.data["q"][: clone.size], q, equal_nan=True)
    with pytest.raises(ValueError, match="overwrite a replay field"):
        buf.add(np.zeros(2), np.zeros(1), 0.0, False, False, {"reward": np.zeros(1)})
