"""wait_for_callback: a child context of a callback and a submitter step."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from support import describe, invoke_once, sent_updates, start

from durable_async import (
    CallbackError,
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    DurableContext,
    Duration,
    JitterStrategy,
    JsonSerDes,
    RetryPresets,
    RetryStrategyConfig,
    StepContext,
    WaitForCallbackConfig,
    create_retry_strategy,
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


class QueueDown(Exception):
    pass


CHILD_ID = operation_id(None, 1)
CALLBACK_ID = operation_id(CHILD_ID, 1)
SUBMITTER_ID = operation_id(CHILD_ID, 2)


def the_callback_id(backend: MemoryBackend, arn: str) -> str:
    details = backend.executions[arn].operations[CALLBACK_ID].callback_details
    assert details is not None
    assert details.callback_id
    return details.callback_id


# -- structure and success -----------------------------------------------------------------


@pytest.mark.anyio
async def test_structure_submitter_and_success() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    submitted: list[tuple[str, int]] = []
    seen: list[Any] = []

    async def submit(callback_id: str, step: StepContext) -> None:
        submitted.append((callback_id, step.attempt))

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        value = await ctx.wait_for_callback(
            submit, name="approval", config=WaitForCallbackConfig(timeout=600)
        )
        seen.append(value)
        await ctx.wait(seconds=1)
        return value

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    callback_id = the_callback_id(backend, arn)
    assert submitted == [(callback_id, 1)]
    updates = sent_updates(backend)
    assert [(u.type, u.action, u.name, u.sub_type, u.parent_id) for u in updates] == [
        (
            OperationType.CONTEXT,
            OperationAction.START,
            "approval",
            OperationSubType.WAIT_FOR_CALLBACK,
            None,
        ),
        (
            OperationType.CALLBACK,
            OperationAction.START,
            "approval create callback id",
            OperationSubType.CALLBACK,
            CHILD_ID,
        ),
        (
            OperationType.STEP,
            OperationAction.START,
            "approval submitter",
            OperationSubType.STEP,
            CHILD_ID,
        ),
        (
            OperationType.STEP,
            OperationAction.SUCCEED,
            "approval submitter",
            OperationSubType.STEP,
            CHILD_ID,
        ),
    ]
    assert updates[1].callback_options == CallbackOptions(600, 0)
    assert [u.id for u in updates] == [CHILD_ID, CALLBACK_ID, SUBMITTER_ID, SUBMITTER_ID]

    backend.complete_callback(callback_id, '{"approved": true}')
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "SUCCEEDED"
    assert result.result == '{"approved": true}'  # raw by default
    assert seen == ['{"approved": true}'] * 2
    assert len(submitted) == 1  # the submitter never re-ran
    child = backend.executions[arn].operations[CHILD_ID]
    assert child.status is OperationStatus.SUCCEEDED
    assert child.context_details is not None
    assert child.context_details.result == '"{\\"approved\\": true}"'


def notify_reviewer(callback_id: str, step: StepContext) -> str:
    return "sent"


@pytest.mark.anyio
async def test_default_name_is_the_submitter_function_name_and_sync_runs_in_a_thread() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    threads: list[int] = []

    def submit(callback_id: str, step: StepContext) -> None:
        threads.append(threading.get_ident())

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        await ctx.wait_for_callback(notify_reviewer)
        return await ctx.wait_for_callback(submit, name="")

    await invoke_once(handler, backend, arn)
    names = [(u.type, u.name) for u in sent_updates(backend) if u.action is OperationAction.START]
    assert names[:3] == [
        (OperationType.CONTEXT, "notify_reviewer"),
        (OperationType.CALLBACK, "notify_reviewer create callback id"),
        (OperationType.STEP, "notify_reviewer submitter"),
    ]
    backend.complete_callback(the_callback_id(backend, arn))
    await invoke_once(handler, backend, arn)
    names = [(u.type, u.name) for u in sent_updates(backend) if u.action is OperationAction.START]
    # An unnamed wait_for_callback names its inner operations without a prefix.
    assert names[3:] == [
        (OperationType.CONTEXT, None),
        (OperationType.CALLBACK, "create callback id"),
        (OperationType.STEP, "submitter"),
    ]
    assert threads
    assert threads[0] != threading.get_ident()


@pytest.mark.anyio
async def test_serdes_decodes_the_callback_result() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        value = await ctx.wait_for_callback(
            lambda cid, _: None, config=WaitForCallbackConfig(serdes=JsonSerDes())
        )
        seen.append(value)
        await ctx.wait(seconds=1)
        return value["n"]

    await invoke_once(handler, backend, arn)
    backend.complete_callback(the_callback_id(backend, arn), '{"n": 5}')
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == 5
    assert seen == [{"n": 5}, {"n": 5}]


# -- failures ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_failure_raises_callback_failed_error_identically_on_replay() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    seen: list[tuple[Any, ...]] = []
    runs: Counter[str] = Counter()

    def submit(callback_id: str, step: StepContext) -> None:
        runs["submit"] += 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait_for_callback(submit, name="approval")
        except ChildContextError as exc:  # pragma: no cover - the bug this guards against
            seen.append((type(exc),))
        except CallbackError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "handled"

    await invoke_once(handler, backend, arn)
    backend.fail_callback(
        the_callback_id(backend, arn),
        ErrorObject(message="rejected", type="Approval.Rejected", data='{"by": "ops"}'),
    )
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "handled"
    expected = (CallbackFailedError, "rejected", "Approval.Rejected", '{"by": "ops"}')
    assert seen == [expected, expected]
    assert runs["submit"] == 1
    child = backend.executions[arn].operations[CHILD_ID]
    assert child.status is OperationStatus.FAILED


@pytest.mark.anyio
async def test_unhandled_failure_fails_the_execution_with_the_callback_error() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.wait_for_callback(lambda cid, _: None)

    await invoke_once(handler, backend, arn)
    backend.fail_callback(the_callback_id(backend, arn), ErrorObject(message="no", type="X"))
    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "FAILED"
    assert (
        output["Error"]["ErrorType"]
        == "aws_durable_execution_sdk_python.exceptions.CallbackExternalError"
    )
    assert output["Error"]["ErrorMessage"] == "no"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("config", "elapsed", "error_type"),
    [
        (WaitForCallbackConfig(timeout=Duration(120)), 120, "Callback.Timeout"),
        (WaitForCallbackConfig(timeout=120, heartbeat_timeout=15), 15, "Callback.Heartbeat"),
    ],
)
async def test_timeout_raises_callback_timeout_error(
    config: WaitForCallbackConfig, elapsed: int, error_type: str
) -> None:
    seen: list[tuple[Any, ...]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait_for_callback(lambda cid, _: None, name="approval", config=config)
        except CallbackError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "timed out"

    runner = LocalRunner(handler)
    began = runner.backend.now
    result = await runner.run()
    assert result.result == "timed out"
    assert runner.backend.now - began == timedelta(seconds=elapsed + 1)
    expected = (CallbackTimeoutError, "Callback timed out", error_type, None)
    assert seen == [expected, expected]


@pytest.mark.anyio
async def test_submitter_failing_after_retries_raises_submitter_error() -> None:
    attempts: list[int] = []
    seen: list[tuple[Any, ...]] = []
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3, initial_delay=Duration(4), jitter_strategy=JitterStrategy.NONE
        )
    )

    def submit(callback_id: str, step: StepContext) -> None:
        attempts.append(step.attempt)
        raise QueueDown(f"cannot enqueue {callback_id[:4]}")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait_for_callback(
                submit, name="approval", config=WaitForCallbackConfig(retry_strategy=strategy)
            )
        except CallbackSubmitterError as exc:
            seen.append((type(exc), exc.message, exc.error_type))
        await ctx.wait(seconds=1)
        return "submit failed"

    runner = LocalRunner(handler)
    began = runner.backend.now
    result = await runner.run()
    assert result.result == "submit failed"
    assert attempts == [1, 2, 3]
    assert len(seen) == 2
    assert seen[0] == seen[1]
    kind, message, error_type = seen[0]
    assert kind is CallbackSubmitterError
    assert message is not None
    assert message.startswith("cannot enqueue ")
    # The submitter's own exception type, read from its step's record on every run.
    assert error_type is not None
    assert error_type.endswith("QueueDown")
    # Delays of 4 s then 8 s between the attempts, then the one-second wait.
    assert runner.backend.now - began == timedelta(seconds=4 + 8 + 1)
    retries = [
        u
        for u in sent_updates(runner.backend)
        if u.type is OperationType.STEP and u.action is OperationAction.RETRY
    ]
    assert [u.step_options.next_attempt_delay_seconds for u in retries] == [4, 8]  # type: ignore[union-attr]
    assert all(u.name == "approval submitter" for u in retries)
    assert retries[0].error is not None
    assert retries[0].error.type == f"{__name__}.QueueDown"


@pytest.mark.anyio
async def test_submitter_retry_strategy_is_honoured_until_success() -> None:
    backend = MemoryBackend()
    attempts: list[int] = []

    def submit(callback_id: str, step: StepContext) -> None:
        attempts.append(step.attempt)
        if step.attempt < 3:
            raise QueueDown("busy")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.wait_for_callback(
            submit,
            config=WaitForCallbackConfig(retry_strategy=RetryPresets.fixed(Duration(7))),
        )

    runner = LocalRunner(handler, backend)
    pending = await runner.run()
    assert pending.status == "PENDING"  # submitted; the callback has not arrived
    assert attempts == [1, 2, 3]
    retries = [u for u in sent_updates(backend) if u.action is OperationAction.RETRY]
    assert [u.step_options.next_attempt_delay_seconds for u in retries] == [7, 7]  # type: ignore[union-attr]
    backend.complete_callback(the_callback_id(backend, pending.arn), "ok")
    result = await runner.resume(pending.arn)
    assert result.result == "ok"
    assert attempts == [1, 2, 3]


@pytest.mark.anyio
async def test_no_retry_submitter_fails_at_once() -> None:
    attempts: list[int] = []

    def submit(callback_id: str, step: StepContext) -> None:
        attempts.append(step.attempt)
        raise QueueDown("down")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.wait_for_callback(
            submit, config=WaitForCallbackConfig(retry_strategy=RetryPresets.none())
        )

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.invocations == 1
    assert attempts == [1]
    assert result.error is not None
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.CallbackSubmitterError"
    assert result.error.message == "down"


@pytest.mark.anyio
async def test_a_name_near_the_length_limit_is_accepted() -> None:
    """The inner operations' names add to the given name; they are shortened to stay
    within the service's 256 characters, so any valid name works."""

    async def submit(callback_id: str, step: StepContext) -> None:
        return None

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.wait_for_callback(submit, name="r" * 250)

    result = await LocalRunner(handler, pause_on_callbacks=True).run()
    assert result.status == "PENDING", result.error  # waiting for the callback
