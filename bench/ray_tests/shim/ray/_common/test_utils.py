"""``ray._common.test_utils``: where Ray 2.60 keeps some test helpers; the same harness
implementations as ``ray._private.test_utils``."""

from ray._private.test_utils import (  # noqa: F401 - re-exported under Ray's module path
    SignalActor, run_string_as_driver, wait_for_condition)
