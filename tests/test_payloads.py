"""Payload limits and serialization failures, for step results and handler results."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import actions, invoke_once, sent_updates, start

from durable_async import (
    DurableContext,
    RetryPresets,
    SerDesError,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async._invocation import RESPONSE_LIMIT_BYTES
from durable_async._serdes import PAYLOAD_LIMIT_BYTES
from durable_async._wire.converter import to_wire
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async.testing import ErrorObject, LocalRunner, MemoryBackend

LIMIT = 256 * 1024


def test_payload_limit_is_256_kib() -> None:
    assert PAYLOAD_LIMIT_BYTES == LIMIT


def step_ops(backend: MemoryBackend, arn: str) -> list[Any]:
    return [
        op for op in backend.executions[arn].operations.values() if op.type is OperationType.STEP
    ]


@pytest.mark.anyio
async def test_result_at_the_limit_is_stored() -> None:
    text = "x" * (LIMIT - 2)  # plus two quotes: exactly the limit

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        value = await ctx.step(lambda _: text, name="big")
        return len(value)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == LIMIT - 2
    (op,) = step_ops(runner.backend, result.arn)
    assert op.status is OperationStatus.SUCCEEDED
    assert op.step_details.result is not None
    assert len(op.step_details.result.encode()) == LIMIT


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    [
        "x" * (LIMIT - 1),  # one byte over once quoted
        "é" * 50_000,  # 300 KB once JSON-escaped
        {"rows": ["y" * 1000] * 300},  # an envelope over the limit
    ],
    ids=["ascii-one-over", "non-ascii", "envelope"],
)
async def test_oversized_step_result_fails_the_step_the_same_way_on_replay(value: Any) -> None:
    backend = MemoryBackend()
    errors: list[BaseException] = []
    runs = 0

    def produce(_: StepContext) -> Any:
        nonlocal runs
        runs += 1
        return value

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(produce, name="produce")
        except SerDesError as exc:
            errors.append(exc)
        await ctx.wait(seconds=1)
        return "handled"

    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED"
    assert result.result == "handled"
    assert runs == 1
    assert len(errors) == 2  # first run and replay
    assert all(type(e) is SerDesError for e in errors)
    assert str(errors[0]) == str(errors[1])
    assert "produce" in str(errors[0])
    assert f"the limit is {LIMIT} bytes" in str(errors[0])
    (op,) = step_ops(backend, result.arn)
    assert op.status is OperationStatus.FAILED
    assert op.step_details.result is None
    assert op.step_details.error.type == "aws_durable_execution_sdk_python.exceptions.SerDesError"


@pytest.mark.anyio
async def test_unserializable_step_result_is_recorded_as_a_failure() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    class Opaque:
        pass

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(lambda _: Opaque(), name="opaque")

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.SerDesError"
    assert "Opaque" in output["Error"]["ErrorMessage"]
    assert actions(backend)[-1] == ("STEP", "FAIL", "opaque")
    # Not retried: a serialization failure is not a failed attempt.
    assert [a for _, a, _ in actions(backend)].count("RETRY") == 0


@pytest.mark.anyio
async def test_large_handler_result_goes_through_an_execution_checkpoint() -> None:
    big = "z" * (RESPONSE_LIMIT_BYTES + 100)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> dict[str, str]:
        return {"blob": big}

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.outputs[-1].result == ""
    assert result.result == {"blob": big}  # recovered from the EXECUTION update
    last = runner.backend.checkpoint_calls[-1].updates
    assert [(u.type, u.action) for u in last] == [
        (OperationType.EXECUTION, OperationAction.SUCCEED)
    ]
    assert last[0].payload == json.dumps({"blob": big})


@pytest.mark.anyio
async def test_large_handler_result_raw_output() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    big = "z" * (7 * 1024 * 1024)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return big

    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": ""}
    assert backend.executions[arn].result_update is not None


@pytest.mark.anyio
async def test_handler_result_under_the_limit_is_returned_inline() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    text = "q" * (1024 * 1024)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return text

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": json.dumps(text)}
    assert backend.checkpoint_calls == []


@pytest.mark.anyio
async def test_a_huge_handler_error_is_cut_to_what_the_service_stores() -> None:
    huge = "e" * (RESPONSE_LIMIT_BYTES + 10)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        raise ValueError(huge)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "FAILED"
    error = result.outputs[-1].error
    assert error is not None
    assert error.type == "ValueError"
    assert error.message is not None
    assert error.message.startswith("eeee")
    assert error.message.endswith("... [truncated]")
    assert len(json.dumps(to_wire(error))) < 32 * 1024
    assert runner.backend.executions[result.arn].result_update is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value", [{1, 2}, object(), {"key": b"bytes"}], ids=["set", "object", "bytes"]
)
async def test_non_json_handler_result_fails(value: Any) -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return value

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.SerDesError"
    assert "not JSON-serializable" in output["Error"]["ErrorMessage"]


#: The service's bound on a serialized error object (validators/checkpoint.py).
MAX_ERROR_PAYLOAD_SIZE_BYTES = 32768


def error_dict(error: ErrorObject) -> dict[str, Any]:
    """The error as the service measures it (``json.dumps(error.to_dict())``)."""
    fields = {
        "ErrorMessage": error.message,
        "ErrorType": error.type,
        "ErrorData": error.data,
        "StackTrace": list(error.stack_trace) if error.stack_trace is not None else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


@pytest.mark.anyio
async def test_step_errors_sent_fit_the_services_error_limit() -> None:
    backend = MemoryBackend()

    async def call_api(step: StepContext) -> None:
        raise RuntimeError("<html>" + "x" * 40_000 + "</html>")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(call_api, config=StepConfig(retry_strategy=RetryPresets.none()))

    await LocalRunner(handler, backend).run()
    sizes = [
        len(json.dumps(error_dict(u.error))) for u in sent_updates(backend) if u.error is not None
    ]
    assert sizes, "the step's failure was checkpointed"
    assert max(sizes) <= MAX_ERROR_PAYLOAD_SIZE_BYTES
