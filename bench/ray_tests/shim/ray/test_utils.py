"""``ray.test_utils``: the helpers' module path in Ray before 1.5 (older stored test files
import it); the same harness implementations as ``ray._private.test_utils``."""

from ray._private.test_utils import (  # noqa: F401 - re-exported under Ray's module path
    SignalActor, client_test_enabled, generate_system_config_map, get_other_nodes,
    wait_for_condition, wait_for_pid_to_exit)
