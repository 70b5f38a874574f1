"""``ctx.wait``: a durable timer; the invocation ends and the service re-invokes when due."""

from __future__ import annotations

from typing import TYPE_CHECKING

from durable_async._identity import OperationIdentity
from durable_async._operations._common import report_replayed, report_start, update
from durable_async._wire.enums import OperationAction
from durable_async._wire.models import Operation, WaitOptions

if TYPE_CHECKING:
    from durable_async._runtime import InvocationRuntime


async def run_wait(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    recorded: Operation | None,
    seconds: int,
) -> None:
    """Replay a finished wait, or start one and park until the service fires it."""
    if recorded is not None and recorded.status.is_terminal:
        await report_replayed(rt, recorded)
        return
    await report_start(rt, identity, is_replayed=recorded is not None)
    if recorded is None:
        rt.batcher.enqueue(
            update(
                identity,
                OperationAction.START,
                wait_options=WaitOptions(wait_seconds=seconds),
            )
        )
    # The service ends the wait; plugins hear of it from the checkpoint response.
    await rt.monitor.park_until(lambda: _elapsed(rt, identity.id), identity)


def _elapsed(rt: InvocationRuntime, operation_id: str) -> bool:
    op = rt.log.get(operation_id)
    return op is not None and op.status.is_terminal
