"""``ctx.wait``: a durable timer; the invocation ends and the service re-invokes when due."""

from __future__ import annotations

from typing import TYPE_CHECKING

from durable_async._identity import OperationIdentity
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async._wire.models import Operation, OperationUpdate, WaitOptions

if TYPE_CHECKING:
    from durable_async._runtime import InvocationRuntime


async def run_wait(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    recorded: Operation | None,
    seconds: int,
) -> None:
    """Replay a finished wait, or start one and park until the service fires it."""
    rt.track_current_task()
    if recorded is not None:
        if recorded.status.is_terminal:
            return
        if recorded.status is OperationStatus.STARTED:
            await rt.monitor.park()
    rt.batcher.enqueue(
        OperationUpdate(
            id=identity.id,
            type=OperationType.WAIT,
            action=OperationAction.START,
            parent_id=identity.parent_id,
            name=identity.name,
            sub_type=identity.sub_type,
            wait_options=WaitOptions(wait_seconds=seconds),
        )
    )
    await rt.monitor.park()
