"""The AVEM bound's terms as pure functions (``terms``); see ``avem/objective/README.md``."""
from avem.objective import terms
from avem.objective.terms import *  # noqa: F403  (the public names are listed once, in ``terms.__all__``)

__all__ = terms.__all__
