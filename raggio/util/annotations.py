"""Ray's ``ray.util.annotations`` path: the warning category of raggio's deprecations.

``RayDeprecationWarning`` is shown once per module by default, as in Ray (a plain
DeprecationWarning is hidden outside ``__main__``), so users see which old names they use.
"""

import warnings


class RayDeprecationWarning(DeprecationWarning):
    """A deprecated raggio (Ray) API was used; the message names its replacement."""


warnings.filterwarnings("module", category=RayDeprecationWarning)
