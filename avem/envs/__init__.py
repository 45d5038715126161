"""Partially observed dm-control suite tasks (``DOMAIN-TASK-OBS`` ids) as gymnasium envs."""
from avem.envs.dmc import DMCEnv, make_env
from avem.envs.tasks import OBS_MODES, TaskSpec, list_tasks, parse_task_id

__all__ = ["DMCEnv", "OBS_MODES", "TaskSpec", "list_tasks", "make_env", "parse_task_id"]
