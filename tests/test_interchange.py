"""Histories are interchangeable with AWS's Python SDK: its error names are read and written."""

from __future__ import annotations

from typing import Any

import pytest
from support import start

from durable_async import (
    CallbackFailedError,
    ChildContextError,
    DurableContext,
    JsonSerDes,
    SerDesError,
    StepContext,
    StepError,
    WaitForCallbackConfig,
    durable_execution,
)
from durable_async._error_wire import error_object, qualified_type
from durable_async._identity import operation_id
from durable_async._wire.enums import OperationStatus, OperationSubType, OperationType
from durable_async._wire.models import ContextDetails, ErrorObject, Operation, StepDetails
from durable_async.testing import LocalRunner, MemoryBackend

AWS = "aws_durable_execution_sdk_python.exceptions."


def test_sdk_errors_are_written_under_aws_names() -> None:
    assert qualified_type(StepError("x")) == AWS + "StepError"
    assert qualified_type(CallbackFailedError("x")) == AWS + "CallbackExternalError"
    assert qualified_type(SerDesError("x")) == AWS + "SerDesError"
    assert error_object(ChildContextError("boom")).type == AWS + "ChildContextError"
    # User exceptions keep their own names, as in AWS's SDK.
    assert qualified_type(ValueError("x")) == "ValueError"
    assert qualified_type(KeyError("x")) == "KeyError"


def record(backend: MemoryBackend, arn: str, op: Operation) -> None:
    backend.executions[arn].operations[op.id] = op


@pytest.mark.anyio
async def test_a_child_failure_recorded_by_aws_replays_with_a_typed_cause() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    record(
        backend,
        arn,
        Operation(
            id=operation_id(None, 1),
            type=OperationType.CONTEXT,
            status=OperationStatus.FAILED,
            name="child",
            sub_type=OperationSubType.RUN_IN_CHILD_CONTEXT,
            context_details=ContextDetails(
                error=ErrorObject(message="step broke", type=AWS + "StepError")
            ),
        ),
    )
    seen: list[object] = []

    async def child(child_ctx: DurableContext) -> str:
        return "not re-run"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            return await ctx.run_in_child_context(child)
        except ChildContextError as failure:
            seen.append(type(failure.__cause__))
            return "handled"

    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "handled"
    assert seen == [StepError]


@pytest.mark.anyio
async def test_a_serdes_failure_recorded_by_aws_raises_serdes_error() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    record(
        backend,
        arn,
        Operation(
            id=operation_id(None, 1),
            type=OperationType.STEP,
            status=OperationStatus.FAILED,
            name="load",
            sub_type=OperationSubType.STEP,
            step_details=StepDetails(
                attempt=1, error=ErrorObject(message="bad value", type=AWS + "SerDesError")
            ),
        ),
    )

    async def load(step: StepContext) -> str:
        return "not re-run"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            return await ctx.step(load)
        except SerDesError as error:
            return f"serdes: {error}"

    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "serdes: bad value"


@pytest.mark.anyio
async def test_wait_for_callback_stores_its_result_in_the_default_encoding() -> None:
    """The callback's serdes decodes the payload; the child stores the value as AWS does."""
    backend = MemoryBackend()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        result = await ctx.wait_for_callback(
            lambda callback_id, step: None,
            name="review",
            config=WaitForCallbackConfig(serdes=JsonSerDes()),
        )
        return result["status"]

    runner = LocalRunner(handler, backend, pause_on_callbacks=True)
    first = await runner.run()
    (callback_id,) = backend.open_callbacks(first.arn)
    backend.complete_callback(callback_id, '{"status": "approved"}')
    final = await runner.resume(first.arn)
    assert final.result == "approved"
    context = backend.executions[first.arn].operations[operation_id(None, 1)]
    assert context.context_details is not None
    assert context.context_details.result == '{"t":"m","v":{"status":{"t":"s","v":"approved"}}}'
