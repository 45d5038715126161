"""The loop's update schedule, by hand."""
from dataclasses import dataclass

import numpy as np
import pytest

from avem.train.schedule import EpisodeMeans, UpdateSchedule, mean_metrics, scalar_extras


def _counts(schedule: UpdateSchedule, firsts: list[bool]) -> list[int]:
    credit, out = 0.0, []
    for first in firsts:
        n, credit = schedule.due(credit, first)
        out.append(n)
    return out


@pytest.mark.parametrize("per_step, expected", [(1.0, [1, 1, 1, 1]), (0.5, [0, 1, 0, 1]), (1.5, [1, 2, 1, 2]),
                                                (0.0, [0, 0, 0, 0])])
def test_updates_per_step_accrue_as_credit(per_step, expected):
    assert _counts(UpdateSchedule(per_step=per_step), [False] * 4) == expected


def test_updates_per_episode_run_at_each_episode_first_step():
    assert _counts(UpdateSchedule(per_step=0.0, per_episode=3), [True, False, False, True, False]) == [3, 0, 0, 3, 0]


def test_the_schedule_comes_from_the_agent_config():
    @dataclass
    class PerStep:
        updates_per_step: float = 0.25

    @dataclass
    class PerEpisode:
        updates_per_episode: int = 100

    assert UpdateSchedule.of(PerStep()) == UpdateSchedule(per_step=0.25)
    assert UpdateSchedule.of(PerEpisode()) == UpdateSchedule(per_step=0.0, per_episode=100)
    assert UpdateSchedule.of(object()) == UpdateSchedule(per_step=1.0)  # no field: one update per agent step


def test_mean_metrics_averages_each_key_over_the_rows_that_have_it():
    assert mean_metrics([]) == {}
    assert mean_metrics([{"a": 1.0, "b": 4.0}, {"a": 3.0}]) == {"a": 2.0, "b": 4.0}
    assert list(mean_metrics([{"b": 1.0}, {"a": 1.0}])) == ["b", "a"]  # first-appearance order (metrics.csv columns)


def test_only_scalar_extras_are_logged():
    extras = {"plan_mean": np.zeros(2, np.float32), "one": np.zeros(1), "ret": 1.5, "ess": np.float32(0.25)}
    assert scalar_extras(extras) == {"ret": 1.5, "ess": np.float32(0.25)}


def test_episode_means_average_each_name_over_the_steps_that_have_it():
    means = EpisodeMeans()
    means.add({"ret": 1.0})
    means.add({"ret": 2.0, "loss": 4.0})
    means.add({})
    assert means.means() == {"ret": 1.5, "loss": 4.0}
