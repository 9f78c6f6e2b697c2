"""The cluster launcher: `raggio up` and friends."""
