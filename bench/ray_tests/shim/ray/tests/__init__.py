"""``ray.tests``: the helper modules Ray's test files import from their own folder."""
