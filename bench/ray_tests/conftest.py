"""pytest setup for Ray's test files in ``upstream/``: Ray's fixture names and the results file.

The backend is whichever ``ray`` imports (``run.py`` sets it up): raggio through ``shim/``,
or Ray 2.60 with ``ray_compat``'s module aliases (``RAY_TESTS_BACKEND=ray``).
"""

import os

if os.environ.get("RAY_TESTS_BACKEND") == "ray":
    import ray_compat

    ray_compat.install()

pytest_plugins = ["ray_fixtures", "ray_results"]
