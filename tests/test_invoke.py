"""Chained invoke: the START, results and failures of the target, replay, validation."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from support import invoke_once, sent_updates, start

from durable_async import (
    DurableContext,
    InvokeConfig,
    InvokeError,
    PayloadTooLargeError,
    SerDesContext,
    SerDesError,
    ValidationError,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._serdes import INVOKE_PAYLOAD_LIMIT_BYTES
from durable_async._wire.enums import (
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)
from durable_async._wire.models import ChainedInvokeOptions, ErrorObject
from durable_async.testing import LocalRunner, MemoryBackend


class Declined(Exception):
    pass


def invoke_updates(backend: MemoryBackend) -> list[Any]:
    return [u for u in sent_updates(backend) if u.type is OperationType.CHAINED_INVOKE]


def make_target(runs: Counter[str], events: list[Any]) -> Any:
    @durable_execution
    async def target(event: Any, ctx: DurableContext) -> dict[str, Any]:
        runs["target"] += 1
        events.append(event)
        total = await ctx.step(lambda _: sum(event["items"]), name="sum")
        return {"total": total, "tenant": ctx.lambda_context.tenant_id}

    return target


# -- success and replay --------------------------------------------------------------------


@pytest.mark.anyio
async def test_invoke_sends_payload_and_options_and_returns_the_target_result() -> None:
    runs: Counter[str] = Counter()
    events: list[Any] = []
    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        value = await ctx.invoke(
            "arn:aws:lambda:us-east-1:123456789012:function:adder:live",
            {"items": [1, 2, 3]},
            name="add",
            tenant_id="tenant-7",
        )
        seen.append(value)
        await ctx.wait(seconds=1)
        return value

    runner = LocalRunner(handler, functions={"adder": make_target(runs, events)})
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    # The target ran as its own execution, with the tenant the invoke asked for.
    assert result.result == {"total": 6, "tenant": "tenant-7"}
    assert seen == [{"total": 6, "tenant": "tenant-7"}] * 2
    assert events == [{"items": [1, 2, 3]}]
    # The target ran once; replays of the caller never invoked it again.
    assert runs == Counter({"target": 1})
    assert len(runner.backend.executions) == 2

    (update,) = invoke_updates(runner.backend)
    assert update.action is OperationAction.START
    assert update.name == "add"
    assert update.sub_type == OperationSubType.CHAINED_INVOKE
    assert update.payload == '{"items": [1, 2, 3]}'
    assert update.chained_invoke_options == ChainedInvokeOptions(
        "arn:aws:lambda:us-east-1:123456789012:function:adder:live", "tenant-7"
    )
    op = runner.backend.executions[result.arn].operations[operation_id(None, 1)]
    assert op.status is OperationStatus.SUCCEEDED


@pytest.mark.anyio
async def test_pending_invoke_completed_by_hand() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        value = await ctx.invoke("worker", "plain string", config=InvokeConfig(tenant_id="t"))
        seen.append(value)
        return value

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    (pending,) = backend.pending_invokes(arn)
    assert pending.function_name == "worker"
    assert pending.payload == '"plain string"'
    assert pending.tenant_id == "t"
    assert pending.operation_id == operation_id(None, 1)
    assert invoke_updates(backend)[0].name is None

    # Invoked again before the target finishes: parks again, sends nothing.
    calls = len(backend.checkpoint_calls)
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert len(backend.checkpoint_calls) == calls
    assert seen == []

    backend.complete_invoke(arn, pending.operation_id, result='{"ok": [1, 2]}')
    assert backend.pending_invokes(arn) == []
    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "SUCCEEDED"
    assert seen == [{"ok": [1, 2]}]
    assert len(invoke_updates(backend)) == 1


@pytest.mark.anyio
async def test_target_without_result_gives_none() -> None:
    @durable_execution
    async def target(event: Any, ctx: DurableContext) -> None:
        return None

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return repr(await ctx.invoke("noop"))

    runner = LocalRunner(handler, functions={"noop": target})
    result = await runner.run()
    assert result.result == "None"
    (update,) = invoke_updates(runner.backend)
    assert update.payload == "null"
    assert update.chained_invoke_options == ChainedInvokeOptions("noop", None)


class Envelope:
    """Wraps the payload in an envelope; decodes results into a tagged tuple."""

    def __init__(self) -> None:
        self.contexts: list[SerDesContext] = []

    def serialize(self, value: Any, context: SerDesContext) -> str:
        self.contexts.append(context)
        return json.dumps({"wrapped": value})

    async def deserialize(self, data: str, context: SerDesContext) -> Any:
        self.contexts.append(context)
        return ("decoded", json.loads(data))


@pytest.mark.anyio
async def test_custom_payload_and_result_serdes() -> None:
    events: list[Any] = []
    envelope = Envelope()
    seen: list[Any] = []

    @durable_execution
    async def target(event: Any, ctx: DurableContext) -> list[int]:
        events.append(event)
        return [event["wrapped"], 2]

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        value = await ctx.invoke(
            "target",
            1,
            config=InvokeConfig(serdes_payload=envelope, serdes_result=envelope),
        )
        seen.append(value)
        await ctx.wait(seconds=1)
        return list(value)

    runner = LocalRunner(handler, functions={"target": target})
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert events == [{"wrapped": 1}]
    assert seen == [("decoded", [1, 2])] * 2
    assert invoke_updates(runner.backend)[0].payload == '{"wrapped": 1}'
    assert envelope.contexts[0] == SerDesContext(operation_id(None, 1), result.arn)


# -- failures --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_failing_target_raises_invoke_error_also_on_replay() -> None:
    runs: list[int] = []
    seen: list[tuple[Any, ...]] = []

    @durable_execution
    async def target(event: Any, ctx: DurableContext) -> None:
        runs.append(1)
        raise Declined(f"card {event['card']} declined")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.invoke("payments", {"card": "4242"}, name="charge")
        except InvokeError as exc:
            seen.append((type(exc), exc.error_type, exc.message))
        await ctx.wait(seconds=1)
        return "handled"

    runner = LocalRunner(handler, functions={"payments": target})
    result = await runner.run()
    assert result.result == "handled"
    assert runs == [1]
    expected = (InvokeError, f"{__name__}.Declined", "card 4242 declined")
    assert seen == [expected, expected]
    op = runner.backend.executions[result.arn].operations[operation_id(None, 1)]
    assert op.status is OperationStatus.FAILED


@pytest.mark.anyio
async def test_unhandled_invoke_failure_fails_the_caller() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("remote")

    await invoke_once(handler, backend, arn)
    (pending,) = backend.pending_invokes(arn)
    backend.complete_invoke(
        arn, pending.operation_id, error=ErrorObject(message="stopped", type="Lambda.Stopped")
    )
    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.InvokeError"
    assert output["Error"]["ErrorMessage"] == "stopped"


@pytest.mark.anyio
async def test_failure_without_message_names_the_function() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    seen: list[InvokeError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.invoke("remote")
        except InvokeError as exc:
            seen.append(exc)
        return "ok"

    await invoke_once(handler, backend, arn)
    (pending,) = backend.pending_invokes(arn)
    backend.complete_invoke(arn, pending.operation_id, error=ErrorObject(type="Lambda.Timeout"))
    await invoke_once(handler, backend, arn)
    (error,) = seen
    assert error.error_type == "Lambda.Timeout"
    assert error.message is not None
    assert "remote" in error.message
    assert "FAILED" in error.message


@pytest.mark.anyio
async def test_payload_over_the_limit_is_rejected_before_anything_is_sent() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    caught: list[PayloadTooLargeError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.invoke("target", "x" * INVOKE_PAYLOAD_LIMIT_BYTES, name="big")
        except PayloadTooLargeError as exc:
            caught.append(exc)
        return "rejected"

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"rejected"'}
    (error,) = caught
    assert error.size == INVOKE_PAYLOAD_LIMIT_BYTES + 2  # the service takes up to 1 MiB
    assert error.limit == INVOKE_PAYLOAD_LIMIT_BYTES
    assert "big" in str(error)
    assert invoke_updates(backend) == []
    assert backend.pending_invokes(arn) == []


@pytest.mark.anyio
async def test_a_payload_that_cannot_be_serialized_names_the_invoke() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    caught: list[SerDesError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.invoke("target", object(), name="notify")
        except SerDesError as exc:
            caught.append(exc)
        return "rejected"

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"rejected"'}
    (error,) = caught
    assert str(error).startswith("the payload of invoke notify: ")
    assert "not JSON serializable" in str(error)
    assert invoke_updates(backend) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("",), {}),
        ((None,), {}),
        (("target",), {"tenant_id": "a", "config": InvokeConfig(tenant_id="b")}),
        (("target",), {"name": "\n"}),
    ],
)
async def test_invalid_invocations_raise_validation_error(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    caught: list[ValidationError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.invoke(*args, **kwargs).close()
        except ValidationError as exc:
            caught.append(exc)
        return "ok"

    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": '"ok"'}
    assert len(caught) == 1
    assert invoke_updates(backend) == []


KIB = 1024
MIB = 1024 * KIB


@durable_execution
async def echo_size(event: Any, ctx: DurableContext) -> int:
    return len(json.dumps(event))


@durable_execution
async def huge_result(event: Any, ctx: DurableContext) -> str:
    return "x" * (MIB + 100 * KIB)


@pytest.mark.anyio
async def test_invoke_of_a_target_awaiting_a_callback_stays_pending() -> None:
    @durable_execution
    async def approve(event: Any, ctx: DurableContext) -> Any:
        approval = await ctx.create_callback(name="approval")  # no timeout
        return await approval.result()

    @durable_execution
    async def parent(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("approve", {"order": 1}, name="ask")

    runner = LocalRunner(parent, functions={"approve": approve}, pause_on_callbacks=True)
    result = await runner.run()
    assert result.status == "PENDING", result.error


@pytest.mark.anyio
async def test_invoke_target_sees_the_requested_tenant() -> None:
    @durable_execution
    async def target(event: Any, ctx: DurableContext) -> Any:
        return ctx.lambda_context.tenant_id

    @durable_execution
    async def parent(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("target", None, tenant_id="tenant-7")

    result = await LocalRunner(parent, functions={"target": target}).run()
    assert result.result == "tenant-7"


@pytest.mark.anyio
async def test_invoke_payload_between_256_kib_and_1_mib_is_accepted() -> None:
    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("payments", {"blob": "x" * (300 * KIB)}, name="charge")

    result = await LocalRunner(caller, functions={"payments": echo_size}).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result > 300 * KIB


@pytest.mark.anyio
async def test_invoke_target_result_over_1_mib_fails_the_invoke() -> None:
    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> str:
        try:
            value = await ctx.invoke("big", None, name="fetch")
        except Exception as error:  # InvokeError, as on the service
            return f"failed: {type(error).__name__}"
        return f"got {len(value)} characters"

    result = await LocalRunner(caller, functions={"big": huge_result}).run()
    assert result.result == "failed: InvokeError"


@pytest.mark.anyio
async def test_malformed_invoke_target_fails_the_execution_as_on_the_service() -> None:
    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("payments service!", {"amount": 1})

    result = await LocalRunner(caller, functions={"payments service!": echo_size}).run()
    assert result.status == "FAILED"


@pytest.mark.anyio
async def test_invalid_tenant_id_fails_the_execution_as_on_the_service() -> None:
    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("payments", {"amount": 1}, tenant_id="tenant#1")

    result = await LocalRunner(caller, functions={"payments": echo_size}).run()
    assert result.status == "FAILED"


@pytest.mark.anyio
async def test_runner_finds_a_qualified_target_invoked_by_arn() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:payments:live"

    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke(arn, {"amount": 1})

    result = await LocalRunner(caller, functions={"payments:live": echo_size}).run()
    assert result.status == "SUCCEEDED"
