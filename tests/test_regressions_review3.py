"""Regression tests for problems found in the third review (each failed before its fix)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from durable_async import (
    CheckpointError,
    DurableContext,
    RetryStrategyConfig,
    StepContext,
    ValidationError,
    create_retry_strategy,
    durable_execution,
)
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
)
from durable_async.testing import LocalRunner, MemoryBackend

LOG = logging.getLogger(__name__)
KIB = 1024
MIB = 1024 * KIB


@durable_execution
async def echo_size(event: Any, ctx: DurableContext) -> int:
    return len(json.dumps(event))


@durable_execution
async def huge_result(event: Any, ctx: DurableContext) -> str:
    return "x" * (MIB + 100 * KIB)


# -- chained invokes: sizes and targets -----------------------------------------------


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
async def test_malformed_invoke_target_is_rejected_like_the_service() -> None:
    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("payments service!", {"amount": 1})

    result = await LocalRunner(caller, functions={"payments service!": echo_size}).run()
    assert result.status == "FAILED"


@pytest.mark.anyio
async def test_invalid_tenant_id_is_rejected_like_the_service() -> None:
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


# -- durations: wrong exception types --------------------------------------------------


_NOT_FINITE = {
    "wait-nan": lambda ctx: ctx.wait(float("nan")),
    "wait-inf": lambda ctx: ctx.wait(float("inf")),
    "wait-seconds-nan": lambda ctx: ctx.wait(seconds=float("nan")),
    "callback-timeout-inf": lambda ctx: ctx.create_callback(timeout=float("inf")),
}


@pytest.mark.parametrize("call", _NOT_FINITE.values(), ids=_NOT_FINITE.keys())
@pytest.mark.anyio
async def test_non_finite_duration_raises_validation_error(call: Any) -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            call(ctx)
        except ValidationError:
            return "ValidationError"
        except Exception as error:
            return type(error).__name__
        return "accepted"

    result = await LocalRunner(handler).run()
    assert result.result == "ValidationError"


# -- surprises -------------------------------------------------------------------------


def test_retryable_errors_given_one_string_is_not_split_into_characters() -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(retryable_errors="Timeout"))
    decision = strategy(ValueError("invalid input"), 1)
    assert not decision.should_retry


@pytest.mark.anyio
async def test_wait_for_callback_accepts_any_valid_name() -> None:
    async def submit(callback_id: str, step: StepContext) -> None:
        return None

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.wait_for_callback(submit, name="r" * 250)

    result = await LocalRunner(handler, pause_on_callbacks=True).run()
    assert result.status == "PENDING", result.error  # waiting for the callback


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
