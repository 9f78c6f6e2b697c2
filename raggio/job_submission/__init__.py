"""Ray's ``ray.job_submission``: submit jobs to a cluster's dashboard and follow them.

``JobSubmissionClient`` (``sdk.py``) speaks the dashboard's ``/api/jobs/`` (Ray 2.60's
wire format, so it reaches Ray's dashboards too); ``JobStatus``, ``JobType``, ``JobErrorType``,
``JobInfo``, ``JobDetails`` and ``DriverInfo`` (``common.py``) are what it answers with.
"""

from raggio.job_submission.common import (DriverInfo, JobDetails, JobErrorType, JobInfo,
                                          JobStatus, JobType)
from raggio.job_submission.sdk import JobSubmissionClient

__all__ = ["DriverInfo", "JobDetails", "JobErrorType", "JobInfo", "JobStatus",
           "JobSubmissionClient", "JobType"]
