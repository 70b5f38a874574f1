"""Regression tests for problems found in the third review (each failed before its fix)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from durable_async import (
    DurableContext,
    RetryStrategyConfig,
    StepContext,
    ValidationError,
    create_retry_strategy,
    durable_execution,
)
from durable_async.testing import LocalRunner

LOG = logging.getLogger(__name__)
KIB = 1024
MIB = 1024 * KIB


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
