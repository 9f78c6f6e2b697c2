"""``ray.cluster_utils``: raggio's ``Cluster``, plus Ray's ``cluster_not_supported`` flag."""

from raggio.cluster_utils import Cluster, ClusterNode  # noqa: F401 - Ray's names

#: Ray sets this on platforms without multi-node clusters (Windows); raggio has them.
cluster_not_supported = False
