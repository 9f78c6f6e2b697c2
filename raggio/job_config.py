"""``raggio.job_config``: Ray's ``JobConfig``, a job's settings for ``init(job_config=...)``.

Defined in ``core/job_config.py``, beside the ``init()`` that reads it; this
module is its public path.
"""

from raggio.core.job_config import JobConfig

__all__ = ["JobConfig"]
