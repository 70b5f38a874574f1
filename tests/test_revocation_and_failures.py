"""Token revocation, checkpoint failures, and suspension that user code cannot swallow."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import pytest
from support import actions, invoke_once, start

from durable_async import (
    BackendError,
    CheckpointError,
    DurableContext,
    DurableExecutionClient,
    ExecutionStateError,
    OperationStatus,
    OperationType,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)
from durable_async.testing import LocalRunner, MemoryBackend


def step_statuses(backend: MemoryBackend, arn: str) -> dict[str | None, OperationStatus]:
    return {
        op.name: op.status
        for op in backend.executions[arn].operations.values()
        if op.type is OperationType.STEP
    }


def counting_handler(runs: Counter[str]) -> Any:
    async def body(_: StepContext, label: str) -> str:
        runs[label] += 1
        return label

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        return [await ctx.step(body, label, name=label) for label in ("a", "b", "c")]

    return handler


class RevokingBackend(MemoryBackend):
    """Withdraws the token on the ``revoke_on``-th checkpoint call (after recording it)."""

    def __init__(self, revoke_on: int) -> None:
        super().__init__()
        self.revoke_on = revoke_on

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        if len(self.checkpoint_calls) + 1 == self.revoke_on:
            self.revoke_next_checkpoint()
        return await super().checkpoint(params, logger)


@pytest.mark.anyio
async def test_revoked_token_ends_pending_and_keeps_accepted_work() -> None:
    backend = RevokingBackend(revoke_on=2)  # step b's call
    arn = start(backend)
    runs: Counter[str] = Counter()
    handler = counting_handler(runs)

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    assert runs == Counter({"a": 1, "b": 1})  # c never started after the revocation
    assert len(backend.checkpoint_calls) == 2
    assert step_statuses(backend, arn) == {
        "a": OperationStatus.SUCCEEDED,
        "b": OperationStatus.SUCCEEDED,
    }

    # The next invocation replays a and b and runs only c.
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "SUCCEEDED"
    assert result.result == ["a", "b", "c"]
    assert runs == Counter({"a": 1, "b": 1, "c": 1})
    assert len(backend.checkpoint_calls) == 3


@pytest.mark.anyio
async def test_revocation_on_the_first_call() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    runs: Counter[str] = Counter()
    handler = counting_handler(runs)
    backend.revoke_next_checkpoint()
    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    assert step_statuses(backend, arn) == {"a": OperationStatus.SUCCEEDED}
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == ["a", "b", "c"]
    assert runs["a"] == 1


@pytest.mark.anyio
async def test_non_retryable_checkpoint_failure_fails_the_execution() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    swallowed: list[BaseException] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(lambda _: 1, name="one")
        except Exception as exc:  # the user cannot paper over a dead backend
            swallowed.append(exc)
        return "looks fine"

    backend.fail_next_checkpoint(
        CheckpointError("access denied to the execution", retryable=False, code="AccessDenied")
    )
    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "FAILED"
    assert (
        output["Error"]["ErrorType"]
        == "aws_durable_execution_sdk_python.exceptions.CheckpointError"
    )
    assert output["Error"]["ErrorMessage"] == "access denied to the execution"
    assert len(swallowed) == 1
    assert isinstance(swallowed[0], CheckpointError)
    assert step_statuses(backend, arn) == {}  # nothing was recorded


@pytest.mark.anyio
async def test_retryable_checkpoint_failure_raises_for_lambda_to_retry() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    runs: Counter[str] = Counter()
    handler = counting_handler(runs)
    error = CheckpointError("throttled", retryable=True, code="TooManyRequestsException")
    backend.fail_next_checkpoint(error)
    with pytest.raises(CheckpointError) as info:
        await invoke_once(handler, backend, arn)
    assert info.value is error
    # Lambda's retry (LocalRunner does the same) completes the execution.
    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "SUCCEEDED"
    assert result.result == ["a", "b", "c"]


class BrokenClient(DurableExecutionClient):
    """A client that breaks its contract by raising a non-``BackendError``."""

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        raise ConnectionResetError("socket closed")

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        raise AssertionError("not called")


@pytest.mark.anyio
async def test_contract_breaking_client_error_becomes_retryable_checkpoint_error() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(lambda _: 1, name="one")

    event = {"DurableExecutionArn": "arn:x", "CheckpointToken": "t0"}
    with pytest.raises(CheckpointError) as info:
        await handler.invoke_async(event, client=BrokenClient())
    assert info.value.retryable
    assert isinstance(info.value.__cause__, ConnectionResetError)


class StateFailingBackend(MemoryBackend):
    def __init__(self, error: ExecutionStateError) -> None:
        super().__init__(page_size=1)
        self.error = error

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        raise self.error


@pytest.mark.anyio
@pytest.mark.parametrize("retryable", [True, False])
async def test_initial_state_paging_failure(retryable: bool) -> None:
    error = ExecutionStateError("state unavailable", retryable=retryable)
    backend = StateFailingBackend(error)
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.wait(seconds=1)

    # Give the execution a second operation so the event needs a second page.
    backend.page_size = 1000
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    backend.page_size = 1
    event = LocalRunner(handler, backend).event(arn)
    assert "NextMarker" in event["InitialExecutionState"]
    if retryable:
        with pytest.raises(ExecutionStateError):
            await handler.invoke_async(event, client=backend)
    else:
        output = await handler.invoke_async(event, client=backend)
        assert output["Status"] == "FAILED"
        assert (
            output["Error"]["ErrorType"]
            == "aws_durable_execution_sdk_python.exceptions.GetExecutionStateError"
        )


@pytest.mark.anyio
async def test_except_exception_cannot_swallow_a_retry_suspension() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    after: list[str] = []

    def flaky(_: StepContext) -> None:
        raise RuntimeError("transient")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(flaky, config=StepConfig(retry_strategy=RetryPresets.default()))
        except Exception:
            after.append("swallowed")
            return "swallowed"
        after.append("continued")
        return "continued"

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    assert after == []
    assert actions(backend)[-1] == ("STEP", "RETRY", "flaky")


@pytest.mark.anyio
async def test_except_exception_cannot_swallow_a_wait_suspension() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    after: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait(seconds=10)
        except Exception:
            after.append("swallowed")
        after.append("continued")
        return "done"

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert after == []


async def quick(step: StepContext) -> int:
    return 1


class CancellingBackend(MemoryBackend):
    """A client whose first checkpoint call raises ``CancelledError`` (its own, e.g. a
    pooled connection future cancelled by another waiter); the flusher was not cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        if self.armed:
            self.armed = False
            raise asyncio.CancelledError
        return await super().checkpoint(params, logger)


@pytest.mark.anyio
async def test_client_raising_cancelled_error_ends_as_a_retryable_failure() -> None:
    """The client's own ``CancelledError`` used to escape the invocation as if Lambda had
    cancelled it; it is a failed call that Lambda should retry."""
    backend = CancellingBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(quick)

    try:
        outcome: Any = await invoke_once(handler, backend, arn)
    except asyncio.CancelledError:
        outcome = "CancelledError escaped"
    except BackendError as error:
        outcome = ("BackendError", error.retryable)
    assert outcome == ("BackendError", True)


class ClientAbort(BaseException):
    """A non-``Exception`` escaping a client (``pytest.fail`` in a test double, gevent's
    ``Timeout``, a framework's cancellation signal)."""


class AbortingBackend(MemoryBackend):
    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        raise ClientAbort


@pytest.mark.anyio
async def test_client_raising_a_base_exception_does_not_hang_the_invocation() -> None:
    backend = AbortingBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(quick)  # START and SUCCEED ride in one awaited batch

    task = asyncio.ensure_future(invoke_once(handler, backend, arn))
    for _ in range(1000):  # loop turns, not time: the invocation must end without I/O
        if task.done():
            break
        await asyncio.sleep(0)
    ended = task.done()
    task.cancel()
    with contextlib.suppress(BaseException):  # ClientAbort or our cancellation
        await task
    assert ended, "the invocation was still running 1000 loop turns after the client raised"


class AlwaysThrottled(MemoryBackend):
    """A backend whose every checkpoint call is throttled (retryable)."""

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        raise CheckpointError(
            "CheckpointDurableExecution failed: ThrottlingException",
            retryable=True,
            code="ThrottlingException",
            status_code=429,
        )


@pytest.mark.anyio
async def test_runner_reports_why_every_invocation_failed() -> None:
    """A runner whose every invocation failed used to return PENDING with no error."""

    async def work(step: StepContext) -> int:
        return 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(work)

    runner = LocalRunner(handler, AlwaysThrottled(), max_invocations=3)
    try:
        result = await runner.run()
    except CheckpointError:
        return  # raising the last error would do
    assert result.status != "PENDING" or result.error is not None
