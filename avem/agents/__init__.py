"""Built-in agents. Importing this package registers every entry (one module per agent family)."""
from avem.agents import random_agent, sac  # noqa: F401  (registration side effects)
