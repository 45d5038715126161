"""Built-in agents. Importing this package registers every entry (one module per agent family)."""
from avem.agents import random_agent, sac  # noqa: F401  (registration side effects)
from avem.agents import dreamer, planet, sb3_sac  # noqa: F401  (baselines: Dreamer, PlaNet, Stable-Baselines3 SAC)
from avem.agents import avem  # noqa: F401  (the AVEM family: avem-disc-*, avem-gen-*)
