"""Cleanup, compensation and swallowed suspensions around operations that suspend.

When an invocation suspends, the suspension signal unwinds the handler through its
``finally`` blocks, ``async with`` exits, ``except BaseException`` handlers and exit stacks.
Code there must not start or record new operations (they would be recorded at the wrong
time and break the next replay): it runs once, in the invocation where the protected block
really ends. And a context whose body swallows the signal and goes on must not complete in
this invocation, because the operation that suspended has not taken effect yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from types import TracebackType
from typing import Any

import pytest
from support import ListHandler

from durable_async import (
    DurableContext,
    OperationStatus,
    OperationType,
    RetryPresets,
    StepConfig,
    StepContext,
    StepError,
    durable_execution,
)
from durable_async._wire.models import Operation
from durable_async.testing import ExecutionResult, LocalRunner

SdkLogger = tuple[logging.Logger, ListHandler]

#: Fails at once: the failure surfaces as ``StepError`` in the same invocation.
NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class Declined(Exception):
    pass


# -- reading the recorded history ----------------------------------------------------


class Saga:
    """A booking saga's step bodies; ``ran`` records which ran, in order."""

    def __init__(self, *, payment_fails: bool = True) -> None:
        self.ran: list[str] = []
        self.payment_fails = payment_fails

    async def book(self, step: StepContext) -> str:
        self.ran.append("book")
        return "booking-7"

    async def pay(self, step: StepContext, booking: str) -> str:
        self.ran.append("pay")
        if self.payment_fails:
            raise Declined(f"card declined for {booking}")
        return f"paid {booking}"

    async def undo(self, step: StepContext, booking: str) -> None:
        self.ran.append(f"undo {booking}")


def _started_at(result: ExecutionResult) -> datetime:
    (execution,) = [o for o in result.operations if o.type is OperationType.EXECUTION]
    assert execution.start_timestamp is not None
    return execution.start_timestamp


def recorded_names(result: ExecutionResult) -> list[str | None]:
    """Names of the recorded operations, in the order they were first recorded."""
    return [o.name for o in result.operations if o.type is not OperationType.EXECUTION]


def op(result: ExecutionResult, name: str) -> Operation:
    """The one recorded operation called ``name``."""
    (found,) = [o for o in result.operations if o.name == name]
    return found


def started(result: ExecutionResult, name: str) -> float:
    """Virtual seconds from the execution's start to when ``name`` was recorded as started."""
    stamp = op(result, name).start_timestamp
    assert stamp is not None
    return (stamp - _started_at(result)).total_seconds()


def ended(result: ExecutionResult, name: str) -> float:
    """Virtual seconds from the execution's start to when ``name`` was recorded as ended."""
    stamp = op(result, name).end_timestamp
    assert stamp is not None, f"{name} has not ended"
    return (stamp - _started_at(result)).total_seconds()


def statuses(result: ExecutionResult) -> list[str]:
    return [output.status.value for output in result.outputs]


def warnings_logged(records: ListHandler) -> list[str]:
    """Every warning (or worse) the SDK logged, as messages."""
    return [r.getMessage() for r in records.records if r.levelno >= logging.WARNING]


# -- cleanup around a suspending operation ---------------------------------------------


@pytest.mark.anyio
async def test_finally_cleanup_runs_once_when_the_protected_block_ends(
    sdk_logger: SdkLogger,
) -> None:
    ran: list[str] = []

    async def work(step: StepContext) -> str:
        ran.append("work")
        return "worked"

    async def cleanup(step: StepContext) -> None:
        ran.append("cleanup")

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait(seconds=60, name="pause")
            outcome: str = await ctx.step(work, name="work")
        finally:
            await ctx.step(cleanup, name="cleanup")
        return outcome

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "worked"
    assert ran == ["work", "cleanup"]
    assert recorded_names(result) == ["pause", "work", "cleanup"]
    assert op(result, "cleanup").status is OperationStatus.SUCCEEDED
    assert started(result, "cleanup") == ended(result, "cleanup") == 60
    assert statuses(result) == ["PENDING", "SUCCEEDED"]
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


@pytest.mark.anyio
async def test_async_with_exit_step_runs_once_after_the_block_ends(sdk_logger: SdkLogger) -> None:
    ran: list[str] = []

    async def acquire(step: StepContext) -> str:
        ran.append("acquire")
        return "lease-1"

    async def work(step: StepContext) -> None:
        ran.append("work")

    async def release(step: StepContext, lease: str) -> None:
        ran.append(f"release {lease}")

    class Lease:
        def __init__(self, ctx: DurableContext) -> None:
            self.ctx = ctx
            self.lease = ""

        async def __aenter__(self) -> Lease:
            self.lease = await self.ctx.step(acquire, name="acquire")
            return self

        async def __aexit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            await self.ctx.step(release, self.lease, name="release")

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        async with Lease(ctx) as lease:
            await ctx.wait(seconds=90, name="pause")
            await ctx.step(work, name="work")
        return lease.lease

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "lease-1"
    assert ran == ["acquire", "work", "release lease-1"]
    assert recorded_names(result) == ["acquire", "pause", "work", "release"]
    assert started(result, "release") == 90
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


@pytest.mark.anyio
async def test_exit_stack_callbacks_run_once_in_order_after_the_block_ends(
    sdk_logger: SdkLogger,
) -> None:
    ran: list[str] = []

    async def open_resource(step: StepContext, which: str) -> None:
        ran.append(f"open {which}")

    async def close_resource(step: StepContext, which: str) -> None:
        ran.append(f"close {which}")

    async def work(step: StepContext) -> None:
        ran.append("work")

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        async def close(which: str) -> None:
            await ctx.step(close_resource, which, name=f"close-{which}")

        async with contextlib.AsyncExitStack() as stack:
            for which in ("a", "b"):
                await ctx.step(open_resource, which, name=f"open-{which}")
                stack.push_async_callback(close, which)
            await ctx.wait(seconds=45, name="pause")
            await ctx.step(work, name="work")
        return "closed"

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "closed"
    assert ran == ["open a", "open b", "work", "close b", "close a"]
    assert recorded_names(result) == ["open-a", "open-b", "pause", "work", "close-b", "close-a"]
    assert started(result, "close-b") == started(result, "close-a") == 45
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


# -- compensation (sagas) --------------------------------------------------------------


@pytest.mark.anyio
async def test_saga_compensates_a_failed_payment_in_except_step_error_after_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    saga = Saga()

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        booking = await ctx.step(saga.book, name="book")
        try:
            await ctx.wait(seconds=30, name="hold")
            await ctx.step(saga.pay, booking, name="pay", config=NO_RETRY)
        except StepError as error:
            await ctx.step(saga.undo, booking, name="cancel-booking")
            return f"compensated: {error.message}"
        return "paid"

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "compensated: card declined for booking-7"
    assert saga.ran == ["book", "pay", "undo booking-7"]
    assert recorded_names(result) == ["book", "hold", "pay", "cancel-booking"]
    assert op(result, "pay").status is OperationStatus.FAILED
    assert started(result, "cancel-booking") == 30
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


@pytest.mark.anyio
async def test_saga_compensating_in_except_base_exception_runs_once_after_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    saga = Saga()

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        booking = await ctx.step(saga.book, name="book")
        try:
            await ctx.wait(seconds=30, name="hold")
            await ctx.step(saga.pay, booking, name="pay", config=NO_RETRY)
        except BaseException:
            await ctx.step(saga.undo, booking, name="cancel-booking")
            raise
        return "paid"

    result = await LocalRunner(handler).run()

    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.message == "card declined for booking-7"
    assert saga.ran == ["book", "pay", "undo booking-7"]
    assert recorded_names(result) == ["book", "hold", "pay", "cancel-booking"]
    assert started(result, "cancel-booking") == 30
    assert statuses(result) == ["PENDING", "FAILED"]
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


@pytest.mark.anyio
async def test_saga_compensation_in_except_base_exception_does_not_run_when_payment_succeeds(
    sdk_logger: SdkLogger,
) -> None:
    saga = Saga(payment_fails=False)

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        booking = await ctx.step(saga.book, name="book")
        try:
            await ctx.wait(seconds=30, name="hold")
            receipt: str = await ctx.step(saga.pay, booking, name="pay", config=NO_RETRY)
        except BaseException:
            await ctx.step(saga.undo, booking, name="cancel-booking")
            raise
        return receipt

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "paid booking-7"
    assert saga.ran == ["book", "pay"]
    assert recorded_names(result) == ["book", "hold", "pay"]
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


@pytest.mark.anyio
async def test_saga_finally_releases_the_hold_once_after_the_wait(sdk_logger: SdkLogger) -> None:
    saga = Saga()

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        booking = await ctx.step(saga.book, name="book")
        try:
            await ctx.wait(seconds=30, name="hold")
            await ctx.step(saga.pay, booking, name="pay", config=NO_RETRY)
        finally:
            await ctx.step(saga.undo, booking, name="release-hold")
        return "paid"

    result = await LocalRunner(handler).run()

    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.message == "card declined for booking-7"
    assert saga.ran == ["book", "pay", "undo booking-7"]
    assert recorded_names(result) == ["book", "hold", "pay", "release-hold"]
    assert started(result, "release-hold") == 30
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


# -- child contexts and concurrent branches ---------------------------------------------


@pytest.mark.anyio
async def test_cleanup_in_nested_child_contexts_runs_once_innermost_first(
    sdk_logger: SdkLogger,
) -> None:
    ran: list[str] = []

    async def work(step: StepContext) -> None:
        ran.append("work")

    async def cleanup(step: StepContext, which: str) -> None:
        ran.append(f"cleanup {which}")

    async def inner(child: DurableContext) -> str:
        try:
            await child.wait(seconds=20, name="inner-pause")
            await child.step(work, name="work")
        finally:
            await child.step(cleanup, "inner", name="inner-cleanup")
        return "inner done"

    async def outer(child: DurableContext) -> str:
        try:
            value: str = await child.run_in_child_context(inner, name="inner")
        finally:
            await child.step(cleanup, "outer", name="outer-cleanup")
        return value

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.run_in_child_context(outer, name="outer")

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "inner done"
    assert ran == ["work", "cleanup inner", "cleanup outer"]
    assert recorded_names(result) == [
        "outer",
        "inner",
        "inner-pause",
        "work",
        "inner-cleanup",
        "outer-cleanup",
    ]
    outer_op, inner_op = op(result, "outer"), op(result, "inner")
    assert inner_op.parent_id == outer_op.id
    assert op(result, "inner-cleanup").parent_id == inner_op.id
    assert op(result, "outer-cleanup").parent_id == outer_op.id
    assert started(result, "inner-cleanup") == started(result, "outer-cleanup") == 20
    assert ended(result, "inner") == ended(result, "outer") == 20
    assert result.invocations == 2
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


@pytest.mark.anyio
async def test_gathered_branches_each_clean_up_once_when_their_own_wait_ends(
    sdk_logger: SdkLogger,
) -> None:
    ran: list[str] = []

    async def work(step: StepContext, label: str) -> None:
        ran.append(f"work {label}")

    async def cleanup(step: StepContext, label: str) -> None:
        ran.append(f"cleanup {label}")

    @durable_execution(logger=sdk_logger[0])
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        async def branch(label: str, seconds: int) -> str:
            try:
                await ctx.wait(seconds=seconds, name=f"{label}-pause")
                await ctx.step(work, label, name=f"{label}-work")
            finally:
                await ctx.step(cleanup, label, name=f"{label}-cleanup")
            return label

        return list(await asyncio.gather(branch("a", 10), branch("b", 50)))

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == ["a", "b"]
    assert sorted(ran) == ["cleanup a", "cleanup b", "work a", "work b"]
    assert ran.index("work a") < ran.index("cleanup a") < ran.index("work b")
    assert ran.index("work b") < ran.index("cleanup b")
    names = recorded_names(result)
    assert sorted(names, key=str) == sorted(
        ["a-pause", "b-pause", "a-work", "a-cleanup", "b-work", "b-cleanup"]
    )
    assert names.index("a-work") < names.index("a-cleanup") < names.index("b-work")
    assert names.index("b-work") < names.index("b-cleanup")
    assert started(result, "a-cleanup") == 10
    assert started(result, "b-cleanup") == 50
    assert statuses(result) == ["PENDING", "PENDING", "SUCCEEDED"]
    assert result.invocations == 3
    # Cleanup that runs while the invocation suspends swallows nothing.
    assert warnings_logged(sdk_logger[1]) == []


# -- swallowed suspensions ----------------------------------------------------------------


@pytest.mark.anyio
async def test_child_that_swallows_its_suspension_completes_only_after_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    logger, records = sdk_logger
    after_wait: list[int] = []

    async def sleepy(child: DurableContext) -> str:
        try:  # noqa: SIM105 - the pattern under test
            await child.wait(seconds=60, name="nap")
        except BaseException:  # swallows the suspension signal
            pass
        after_wait.append(1)
        return "child done"

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> str:
        value: str = await ctx.run_in_child_context(sleepy, name="sleepy")
        return value

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "child done"
    assert statuses(result) == ["PENDING", "SUCCEEDED"]
    assert result.invocations == 2
    assert op(result, "nap").status is OperationStatus.SUCCEEDED
    assert op(result, "sleepy").status is OperationStatus.SUCCEEDED
    assert ended(result, "nap") == ended(result, "sleepy") == 60
    (warning,) = warnings_logged(records)
    assert "swallowed" in warning
    assert "nap" in warning
    assert "sleepy" in warning
    # The body went on in the first invocation and ran again, properly, in the second.
    assert after_wait == [1, 1]


@pytest.mark.anyio
async def test_root_that_swallows_its_suspension_and_returns_succeeds_only_after_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    logger, records = sdk_logger

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait(seconds=60, name="nap")
        except BaseException:  # swallows the suspension signal
            return "gave up waiting"
        return "waited"

    result = await LocalRunner(handler).run()

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "waited"
    assert statuses(result) == ["PENDING", "SUCCEEDED"]
    assert result.invocations == 2
    assert ended(result, "nap") == 60
    (warning,) = warnings_logged(records)
    assert "swallowed" in warning
    assert "nap" in warning


#: Calling an operation after swallowing the suspension: the call itself raises the signal
#: again, so the body cannot complete; the swallow must still be reported.


async def run_root_swallowing_then_stepping(
    logger: logging.Logger,
) -> tuple[ExecutionResult, list[str]]:
    ran: list[str] = []

    async def follow_up(step: StepContext) -> str:
        ran.append("follow-up")
        return "followed up"

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:  # noqa: SIM105 - the pattern under test
            await ctx.wait(seconds=60, name="nap")
        except BaseException:  # swallows the suspension signal
            pass
        value: str = await ctx.step(follow_up, name="follow-up")
        return value

    return await LocalRunner(handler).run(), ran


async def run_child_swallowing_then_stepping(
    logger: logging.Logger,
) -> tuple[ExecutionResult, list[str]]:
    ran: list[str] = []

    async def follow_up(step: StepContext) -> str:
        ran.append("follow-up")
        return "followed up"

    async def sleepy(child: DurableContext) -> str:
        try:  # noqa: SIM105 - the pattern under test
            await child.wait(seconds=60, name="nap")
        except BaseException:  # swallows the suspension signal
            pass
        value: str = await child.step(follow_up, name="follow-up")
        return value

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> str:
        value: str = await ctx.run_in_child_context(sleepy, name="sleepy")
        return value

    return await LocalRunner(handler).run(), ran


@pytest.mark.anyio
async def test_root_that_swallows_its_suspension_runs_the_next_step_after_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    result, ran = await run_root_swallowing_then_stepping(sdk_logger[0])

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "followed up"
    assert ran == ["follow-up"]
    assert recorded_names(result) == ["nap", "follow-up"]
    assert started(result, "follow-up") == 60
    assert statuses(result) == ["PENDING", "SUCCEEDED"]
    assert result.invocations == 2


@pytest.mark.anyio
async def test_root_that_swallows_its_suspension_then_steps_warns_once_naming_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    logger, records = sdk_logger
    result, _ = await run_root_swallowing_then_stepping(logger)

    assert result.status == "SUCCEEDED", result.error
    (warning,) = warnings_logged(records)
    assert "swallowed" in warning
    assert "nap" in warning


@pytest.mark.anyio
async def test_child_that_swallows_its_suspension_runs_its_next_step_after_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    result, ran = await run_child_swallowing_then_stepping(sdk_logger[0])

    assert result.status == "SUCCEEDED", result.error
    assert result.result == "followed up"
    assert ran == ["follow-up"]
    assert recorded_names(result) == ["sleepy", "nap", "follow-up"]
    assert op(result, "follow-up").parent_id == op(result, "sleepy").id
    assert started(result, "follow-up") == ended(result, "sleepy") == 60
    assert statuses(result) == ["PENDING", "SUCCEEDED"]
    assert result.invocations == 2


@pytest.mark.anyio
async def test_child_that_swallows_its_suspension_then_steps_warns_once_naming_the_wait(
    sdk_logger: SdkLogger,
) -> None:
    logger, records = sdk_logger
    result, _ = await run_child_swallowing_then_stepping(logger)

    assert result.status == "SUCCEEDED", result.error
    (warning,) = warnings_logged(records)
    assert "swallowed" in warning
    assert "nap" in warning


# -- a context that outlives its invocation ---------------------------------------------


@pytest.mark.anyio
async def test_a_context_used_after_its_invocation_ended_raises_a_clear_runtime_error() -> None:
    kept: list[DurableContext] = []

    async def noop(step: StepContext) -> int:
        return 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        kept.append(ctx)
        return await ctx.step(noop)

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    with pytest.raises(RuntimeError, match="invocation has ended: use a context only inside"):
        await kept[0].step(noop, name="late")


@pytest.mark.anyio
async def test_an_operation_refused_while_the_invocation_unwinds_says_why() -> None:
    refused: list[BaseException] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        try:
            await ctx.wait(seconds=10, name="pause")
        finally:
            try:
                await ctx.wait(seconds=1, name="cleanup")
            except BaseException as error:  # the suspension signal, seen by cleanup code
                refused.append(error)
                raise

    result = await LocalRunner(handler).run_until_suspension()
    assert result.status == "PENDING"
    assert len(refused) == 1
    assert not isinstance(refused[0], Exception)  # kept out of ``except Exception``
    assert "the invocation is suspending" in str(refused[0])
