"""``ray._common``: Ray's internals. Only ``test_utils`` is real here; every other name is a
stub that fails when used (see ``ray._modules``)."""

from ray._modules import internal_attribute

__getattr__ = internal_attribute(__name__)
