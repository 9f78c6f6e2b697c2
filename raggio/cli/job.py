"""``raggio job submit|status|logs|stop|list|delete``: Ray's ``ray job`` commands.

Each command is a ``JobSubmissionClient`` call (``raggio/job_submission``) and prints
Ray's lines (its ``cli.py``'s words, without the log prefix and colours): the server's
address, the submitted id and the next steps, the job's output while it runs, and how
it ended. ``submit`` exits 1 when the job it waited for FAILED, as Ray's does. The
address is ``--address``, else ``RAGGIO_ADDRESS``/``RAY_ADDRESS``, else this machine's
cluster. ``main.py`` declares the flags.
"""

from __future__ import annotations

import asyncio
import json
import pprint
import shlex
import sys
import time

import click

from raggio.job_submission import JobStatus, JobSubmissionClient

#: How often ``stop`` asks whether the job has exited (Ray's figure).
STOP_POLL_S = 1.0


def _client(address: str | None, headers: str | None = None) -> JobSubmissionClient:
    try:
        parsed = json.loads(headers) if headers else None
        client = JobSubmissionClient(address, headers=parsed)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc})", param_hint="--headers") from None
    except (ConnectionError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Job submission server address: {client.get_address()}")
    return client


def _big(message: str) -> None:
    click.echo(f"\n{'-' * len(message)}\n{message}\n{'-' * len(message)}\n")


def _print_status(client: JobSubmissionClient, job_id: str) -> JobStatus:
    info = client.get_job_info(job_id)
    if info.status == JobStatus.SUCCEEDED:
        _big(f"Job '{job_id}' succeeded")
    elif info.status == JobStatus.STOPPED:
        click.echo(f"Job '{job_id}' was stopped")
    elif info.status == JobStatus.FAILED:
        _big(f"Job '{job_id}' failed")
        click.echo(f"Status message: {info.message}")
    else:
        click.echo(f"Status for job '{job_id}': {info.status}")
        click.echo(f"Status message: {info.message}")
    return info.status


def _tail(client: JobSubmissionClient, job_id: str) -> JobStatus:
    async def follow():
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)
    asyncio.run(follow())
    return _print_status(client, job_id)


def _json_option(value: str | None, flag: str):
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc})", param_hint=flag) from None


def submit(address, no_wait, submission_id, runtime_env_json, working_dir, metadata_json,
           entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
           entrypoint_resources, headers, entrypoint: tuple[str, ...]) -> None:
    runtime_env = _json_option(runtime_env_json, "--runtime-env-json") or {}
    if working_dir:
        runtime_env["working_dir"] = working_dir
    client = _client(address, headers)
    try:
        job_id = client.submit_job(
            entrypoint=shlex.join(entrypoint), submission_id=submission_id,
            runtime_env=runtime_env, metadata=_json_option(metadata_json, "--metadata-json"),
            entrypoint_num_cpus=entrypoint_num_cpus, entrypoint_num_gpus=entrypoint_num_gpus,
            entrypoint_memory=entrypoint_memory,
            entrypoint_resources=_json_option(entrypoint_resources, "--entrypoint-resources"))
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _big(f"Job '{job_id}' submitted successfully")
    click.echo("Next steps")
    for what, command in (("Query the logs of the job:", "logs"),
                          ("Query the status of the job:", "status"),
                          ("Request the job to be stopped:", "stop")):
        click.echo(f"  {what}\n    raggio job {command} {job_id}")
    click.echo()
    if not no_wait:
        click.echo("Tailing logs until the job exits (disable with --no-wait):")
        if _tail(client, job_id) == JobStatus.FAILED:
            sys.exit(1)


def status(address, job_id, headers) -> None:
    client = _client(address, headers)
    _checked(lambda: _print_status(client, job_id))


def stop(address, no_wait, job_id, headers) -> None:
    client = _client(address, headers)
    click.echo(f"Attempting to stop job '{job_id}'")
    _checked(lambda: client.stop_job(job_id))
    if no_wait:
        return
    click.echo(f"Waiting for job '{job_id}' to exit (disable with --no-wait):")
    while True:
        current = client.get_job_status(job_id)
        if current.is_terminal():
            _print_status(client, job_id)
            return
        click.echo(f"Job has not exited yet. Status: {current}")
        time.sleep(STOP_POLL_S)


def logs(address, job_id, follow, headers) -> None:
    client = _client(address, headers)
    if follow:
        _checked(lambda: _tail(client, job_id))
    else:
        click.echo(_checked(lambda: client.get_job_logs(job_id)), nl=False)


def list_jobs(address, headers) -> None:
    client = _client(address, headers)
    click.echo(pprint.pformat(client.list_jobs()))


def delete(address, job_id, headers) -> None:
    client = _client(address, headers)
    _checked(lambda: client.delete_job(job_id))
    click.echo(f"Job '{job_id}' deleted successfully")


def _checked(call):
    """``call()``, with the server's refusal (an unknown job) as the command's error."""
    try:
        return call()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
