"""Callbacks: IDs from the service, results, failures, timeouts, heartbeats, suspension."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from support import describe, invoke_once, sent_updates, start

from durable_async import (
    Callback,
    CallbackConfig,
    CallbackError,
    CallbackFailedError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    JsonSerDes,
    ValidationError,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._wire.enums import (
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)
from durable_async._wire.models import CallbackOptions, ErrorObject
from durable_async.testing import LocalRunner, MemoryBackend


def callback_updates(backend: MemoryBackend) -> list[Any]:
    return [u for u in sent_updates(backend) if u.type is OperationType.CALLBACK]


def callback_ids(backend: MemoryBackend, arn: str) -> list[str]:
    """The IDs the backend assigned, in operation order."""
    ops = backend.executions[arn].operations.values()
    return [
        op.callback_details.callback_id
        for op in ops
        if op.type is OperationType.CALLBACK
        and op.callback_details is not None
        and op.callback_details.callback_id is not None
    ]


# -- success -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_callback_id_comes_from_the_service_and_the_raw_result_is_returned() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    handed_out: list[str] = []
    results: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approval")
        assert isinstance(callback, Callback)
        handed_out.append(callback.callback_id)
        value = await callback.result()
        results.append(value)
        return value

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    (callback_id,) = callback_ids(backend, arn)
    assert handed_out == [callback_id]
    assert results == []
    (start_update,) = callback_updates(backend)
    assert start_update.action is OperationAction.START
    assert start_update.name == "approval"
    assert start_update.sub_type == OperationSubType.CALLBACK
    assert start_update.callback_options == CallbackOptions(0, 0)

    backend.complete_callback(callback_id, '{"approved": true}')
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "SUCCEEDED"
    # The payload is returned as the raw string by default.
    assert results == ['{"approved": true}']
    assert result.result == '{"approved": true}'
    # Replay hands out the same ID and starts no second callback.
    assert handed_out == [callback_id, callback_id]
    assert len(callback_updates(backend)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("via_config", [False, True])
async def test_serdes_decodes_the_result(via_config: bool) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    serdes = JsonSerDes[Any]()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        if via_config:
            callback = await ctx.create_callback(config=CallbackConfig(serdes=serdes))
        else:
            callback = await ctx.create_callback(serdes=serdes)
        value = await callback.result()
        assert value == {"n": [1, 2]}
        return value["n"]

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    (callback_id,) = callback_ids(backend, arn)
    backend.complete_callback(callback_id, '{"n": [1, 2]}')
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "SUCCEEDED"
    assert result.result == [1, 2]


@pytest.mark.anyio
async def test_success_without_payload_is_none() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback()
        return repr(await callback.result())

    await invoke_once(handler, backend, arn)
    backend.complete_callback(callback_ids(backend, arn)[0])
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "None"


# -- failures and timeouts ----------------------------------------------------------------


@pytest.mark.anyio
async def test_failure_raises_callback_failed_error_with_the_reported_fields() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    seen: list[tuple[Any, ...]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback(name="approval")
        try:
            await callback.result()
        except CallbackError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "handled"

    await invoke_once(handler, backend, arn)
    backend.fail_callback(
        callback_ids(backend, arn)[0],
        ErrorObject(message="denied by Bob", type="Approval.Denied", data='{"who": "bob"}'),
    )
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "handled"
    expected = (CallbackFailedError, "denied by Bob", "Approval.Denied", '{"who": "bob"}')
    assert seen == [expected, expected]  # the same again on replay


@pytest.mark.anyio
async def test_unhandled_callback_failure_fails_the_execution() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback()
        return await callback.result()

    await invoke_once(handler, backend, arn)
    backend.fail_callback(callback_ids(backend, arn)[0], ErrorObject(message="nope", type="X"))
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.CallbackExternalError"
    assert result.error.message == "nope"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "elapsed", "error_type"),
    [
        ({"timeout": 60}, 60, "Callback.Timeout"),
        ({"timeout": Duration(100), "heartbeat_timeout": 10}, 10, "Callback.Heartbeat"),
        ({"timeout": 30, "heartbeat_timeout": 45}, 30, "Callback.Timeout"),
    ],
)
async def test_timeouts_raise_callback_timeout_error(
    kwargs: dict[str, Any], elapsed: int, error_type: str
) -> None:
    seen: list[tuple[Any, ...]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback(**kwargs)
        try:
            await callback.result()
        except CallbackError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "timed out"

    runner = LocalRunner(handler)
    began = runner.backend.now
    result = await runner.run()
    assert result.result == "timed out"
    assert result.invocations == 3  # parked, timed out, after the wait
    expected = (CallbackTimeoutError, "Callback timed out", error_type, None)
    assert seen == [expected, expected]
    assert runner.backend.now - began == timedelta(seconds=elapsed + 1)
    op = runner.backend.executions[result.arn].operations[operation_id(None, 1)]
    assert op.status is OperationStatus.TIMED_OUT


@pytest.mark.anyio
async def test_heartbeat_pushes_the_heartbeat_deadline() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback(timeout=3600, heartbeat_timeout=10)
        try:
            return await callback.result()  # type: ignore[no-any-return]
        except CallbackTimeoutError as exc:
            return f"{exc.error_type} after {(backend.now - began).seconds}s"

    began = backend.now
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    (callback_id,) = callback_ids(backend, arn)
    op_id = operation_id(None, 1)
    backend.advance(8)
    backend.heartbeat_callback(callback_id)
    backend.advance(8)  # 16 s since the start, 8 since the heartbeat
    assert backend.executions[arn].operations[op_id].status is OperationStatus.STARTED
    assert backend.next_due(arn) == began + timedelta(seconds=18)
    backend.heartbeat_callback(callback_id)
    backend.advance(9)
    assert backend.executions[arn].operations[op_id].status is OperationStatus.STARTED
    backend.advance(1)  # 10 s since the last heartbeat
    assert backend.executions[arn].operations[op_id].status is OperationStatus.TIMED_OUT
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "Callback.Heartbeat after 26s"


@pytest.mark.anyio
async def test_heartbeat_then_success_before_the_deadline() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(heartbeat_timeout=10)
        return await callback.result()

    await invoke_once(handler, backend, arn)
    (callback_id,) = callback_ids(backend, arn)
    for _ in range(5):
        backend.advance(9)
        backend.heartbeat_callback(callback_id)
    backend.complete_callback(callback_id, "done")
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "done"


# -- several callbacks, waits, suspension ---------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("await_order", [(0, 1), (1, 0)])
@pytest.mark.parametrize("complete_order", [(0, 1), (1, 0)])
async def test_two_callbacks_in_either_order(
    await_order: tuple[int, int], complete_order: tuple[int, int]
) -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        callbacks = [
            await ctx.create_callback(name="first"),
            await ctx.create_callback(name="second"),
        ]
        got = {}
        for index in await_order:
            got[index] = await callbacks[index].result()
        return [got[0], got[1]]

    runner = LocalRunner(handler, backend)
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    ids = callback_ids(backend, arn)
    assert len(set(ids)) == 2
    first, second = complete_order
    backend.complete_callback(ids[first], f"result {first}")
    halfway = await runner.resume(arn)
    assert halfway.status == "PENDING"  # the other callback is still outstanding
    backend.complete_callback(ids[second], f"result {second}")
    result = await runner.resume(arn)
    assert result.status == "SUCCEEDED"
    assert result.result == ["result 0", "result 1"]
    assert len(callback_updates(backend)) == 2


@pytest.mark.anyio
async def test_two_callbacks_gathered() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        a = await ctx.create_callback(name="a")
        b = await ctx.create_callback(name="b")
        return list(await asyncio.gather(b.result(), a.result()))

    await invoke_once(handler, backend, arn)
    a_id, b_id = callback_ids(backend, arn)
    backend.complete_callback(b_id, "B")
    backend.complete_callback(a_id, "A")
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == ["B", "A"]


@pytest.mark.anyio
async def test_callback_completed_during_a_wait_resolves_on_replay() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    handed_out: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback()
        handed_out.append(callback.callback_id)
        await ctx.wait(seconds=30)
        return await callback.result()

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    backend.complete_callback(handed_out[0], "arrived early")
    backend.advance(30)
    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"arrived early"'}
    assert handed_out == [handed_out[0]] * 2


@pytest.mark.anyio
async def test_result_before_completion_suspends_and_cannot_be_swallowed() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    swallowed: list[BaseException] = []
    reached: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback()
        try:
            await callback.result()
        except Exception as exc:
            swallowed.append(exc)
        reached.append("after")
        return "swallowed"

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert swallowed == []
    assert reached == []
    assert backend.executions[arn].result_update is None
    # Invoked again before the callback completes: still pending, no new checkpoints.
    calls = len(backend.checkpoint_calls)
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert len(backend.checkpoint_calls) == calls


# -- options and validation ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "make",
    [
        lambda ctx: ctx.create_callback(timeout=timedelta(minutes=5), heartbeat_timeout=30),
        lambda ctx: ctx.create_callback(timeout=Duration(300), heartbeat_timeout=Duration(30)),
        lambda ctx: ctx.create_callback(
            config=CallbackConfig(timeout=timedelta(seconds=300), heartbeat_timeout=30)
        ),
    ],
)
async def test_callback_options_are_sent_with_the_start(make: Any) -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await make(ctx)
        return await callback.result()

    await invoke_once(handler, backend, arn)
    (update,) = callback_updates(backend)
    assert update.callback_options == CallbackOptions(
        timeout_seconds=300, heartbeat_timeout_seconds=30
    )
    assert backend.next_due(arn) == backend.now + timedelta(seconds=30)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "kwargs", [{"timeout": 5}, {"heartbeat_timeout": 5}, {"serdes": JsonSerDes()}]
)
async def test_config_and_direct_options_together_are_rejected(kwargs: dict[str, Any]) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    caught: list[ValidationError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.create_callback(config=CallbackConfig(timeout=10), **kwargs).close()
        except ValidationError as exc:
            caught.append(exc)
        return "ok"

    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": '"ok"'}
    assert len(caught) == 1
    assert "not both" in str(caught[0])
    assert callback_updates(backend) == []


@pytest.mark.parametrize("bad", [-1, "5", True])
def test_callback_config_rejects_bad_timeouts(bad: Any) -> None:
    with pytest.raises(ValidationError):
        CallbackConfig(timeout=bad)
    with pytest.raises(ValidationError):
        CallbackConfig(heartbeat_timeout=bad)


def test_callback_config_rounds_fractions_up() -> None:
    assert CallbackConfig(timeout=1.5, heartbeat_timeout=timedelta(milliseconds=1)) == (
        CallbackConfig(timeout=2, heartbeat_timeout=1)
    )
