"""A serve job's endpoint from here: whether it serves now, and a URL that reaches it for as long as it is
needed (through the node's transport: an SSH port forward, or as it is on a local node). What `status`,
`forward`, `chat JOB` and `bench-serve JOB` use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from console.jobs.servespec import ServeEndpoint
from console.records import JobRecord
from remote.forward import FailureCallback, forwarded, ignore_failure
from remote.pool import NodePool
from remote.readiness import ServerProbe, probe_server


class NotServing(ValueError):
    """The job serves nothing (not a serve job), or no more (it ended)."""


def serve_endpoint(job: JobRecord) -> ServeEndpoint:
    """The job's endpoint as its plan recorded it. Raises NotServing for a job of another kind."""
    endpoint = ServeEndpoint.from_plan(job.plan)
    if endpoint is None:
        raise NotServing(f"{job.id} is a {job.plan.get('kind', 'train')} job: it serves nothing "
                         f"(`launch JOB.yaml --kind serve` starts a server)")
    return endpoint


def probe_endpoint(pool: NodePool, endpoint: ServeEndpoint, *, timeout: float) -> ServerProbe:
    """/health then /v1/models, asked on the server's node now."""
    node = pool.cluster.node(endpoint.node)
    return probe_server(pool.transport(node), node.python, url=endpoint.url, health_path=endpoint.health_path,
                        timeout=timeout)


@contextmanager
def endpoint_for(job: JobRecord, pool: NodePool, *, local_port: int = 0,
                 on_failure: FailureCallback = ignore_failure) -> Iterator[str]:
    """A URL here that reaches the job's server, held for the block: a port forward over the node's SSH
    connection (127.0.0.1 only), or the server's own URL on a local node; `on_failure` is told why a
    connection could not be carried. Raises NotServing for a job that serves nothing or has ended,
    OSError when `local_port` cannot be listened on."""
    endpoint = serve_endpoint(job)
    if job.finished:
        raise NotServing(f"{job.id} has {job.state}: its server is gone (`status {job.id}` says why)")
    with forwarded(pool.transport(endpoint.node), endpoint.host, endpoint.port, local_port=local_port,
                   on_failure=on_failure) as url:
        yield url
