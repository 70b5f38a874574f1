"""``ctx.invoke``: start another durable function and await its result.

The START (with the serialized payload) is awaited; then the branch parks until the
service records the target's outcome. A recorded invoke is never started again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable_async._config import InvokeConfig
from durable_async._errors import InvokeError, SerDesError
from durable_async._identity import OperationIdentity
from durable_async._operations._common import report_replayed, report_start, update
from durable_async._serdes import (
    INVOKE_PAYLOAD_LIMIT_BYTES,
    JSON,
    SerDesContext,
    check_payload_size,
    deserialize,
    serialize,
)
from durable_async._wire.enums import OperationAction, OperationStatus
from durable_async._wire.models import ChainedInvokeOptions, Operation

if TYPE_CHECKING:
    from durable_async._runtime import InvocationRuntime


async def run_invoke(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    recorded: Operation | None,
    function_name: str,
    payload: Any,
    config: InvokeConfig,
) -> Any:
    """Replay or start a chained invocation and return the target's result."""
    context = SerDesContext(identity.id, rt.arn)
    if recorded is None or not recorded.status.is_terminal:
        await report_start(rt, identity, is_replayed=recorded is not None)
    else:
        await report_replayed(rt, recorded)
    if recorded is None:
        what = f"the payload of invoke {identity.name or function_name}"
        try:
            data = await serialize(config.serdes_payload or JSON, payload, context)
        except SerDesError as unserializable:
            raise SerDesError(f"{what}: {unserializable}") from unserializable
        check_payload_size(what, data, INVOKE_PAYLOAD_LIMIT_BYTES)
        await rt.batcher.commit(
            update(
                identity,
                OperationAction.START,
                payload=data,
                chained_invoke_options=ChainedInvokeOptions(function_name, config.tenant_id),
            )
        )
        recorded = rt.log.get(identity.id)
    # The target's end reaches plugins from the checkpoint response that carries it.
    await rt.monitor.park_until(lambda: _ended(rt, identity.id), identity)
    recorded = rt.log.get(identity.id)
    assert recorded is not None
    details = recorded.chained_invoke_details
    if recorded.status is OperationStatus.SUCCEEDED:
        result = details.result if details else None
        if result is None:
            return None
        return await deserialize(config.serdes_result or JSON, result, context)
    error = details.error if details else None
    failure = InvokeError.from_error_object(error)
    if failure.message is None:
        failure = InvokeError(
            f"invoke of {function_name} ended as {recorded.status}",
            error_type=failure.error_type,
        )
    raise failure


def _ended(rt: InvocationRuntime, operation_id: str) -> bool:
    op = rt.log.get(operation_id)
    return op is not None and op.status.is_terminal
