"""Durable logging: fields on records, the log filter, silence while replaying."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from support import ListHandler

from durable_async import (
    DurableContext,
    DurableLogFilter,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async.testing import LocalRunner


@pytest.fixture
def app_logger() -> Any:
    """A plain application logger whose handler carries a ``DurableLogFilter``."""
    logger = logging.getLogger(f"test_logging.app.{id(object())}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = ListHandler()
    handler.addFilter(DurableLogFilter())
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


@pytest.mark.anyio
async def test_step_logger_records_carry_durable_fields(sdk_logger: Any) -> None:
    logger, records = sdk_logger

    def charge(step: StepContext, amount: int) -> None:
        step.logger.info("charging %d", amount, extra={"currency": "EUR"})
        if step.attempt == 1:
            raise RuntimeError("declined")

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> None:
        ctx.logger.info("starting")
        await ctx.step(
            charge, 10, name="charge", config=StepConfig(retry_strategy=RetryPresets.linear())
        )

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    step_records = [r for r in records.records if r.getMessage() == "charging 10"]
    assert [r.attempt for r in step_records] == [1, 2]
    for record in step_records:
        assert record.executionArn == result.arn
        assert record.operationId == operation_id(None, 1)
        assert record.operationName == "charge"
        assert record.currency == "EUR"
        assert record.funcName == "charge"  # the caller, not the SDK
        assert record.pathname == __file__
    (start,) = [r for r in records.records if r.getMessage() == "starting"]
    assert start.executionArn == result.arn
    assert not hasattr(start, "operationId")
    assert start.funcName == "handler"


@pytest.mark.anyio
async def test_unnamed_step_has_no_operation_name(sdk_logger: Any) -> None:
    logger, records = sdk_logger

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(lambda step: step.logger.warning("anonymous"))

    await LocalRunner(handler).run()
    (record,) = records.records
    assert record.operationId == operation_id(None, 1)
    assert not hasattr(record, "operationName")


@pytest.mark.anyio
@pytest.mark.parametrize("sync", [True, False], ids=["sync-step", "async-step"])
async def test_filter_stamps_plain_logger_records_inside_steps(app_logger: Any, sync: bool) -> None:
    logger, records = app_logger

    def sync_body(step: StepContext) -> None:
        logger.info("from library code")

    async def async_body(step: StepContext) -> None:
        logger.info("from library code")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        logger.info("in the handler")
        await ctx.step(sync_body if sync else async_body, name="lib")

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    top, inside = records.records
    assert top.getMessage() == "in the handler"
    assert top.executionArn == result.arn
    assert not hasattr(top, "operationId")
    assert inside.getMessage() == "from library code"
    assert inside.executionArn == result.arn
    assert inside.operationId == operation_id(None, 1)
    assert inside.operationName == "lib"
    assert inside.attempt == 1


def test_filter_passes_records_outside_a_handler(app_logger: Any) -> None:
    logger, records = app_logger
    logger.info("plain", extra={"attempt": "mine"})
    (record,) = records.records
    assert record.attempt == "mine"
    assert not hasattr(record, "executionArn")


@pytest.mark.anyio
async def test_filter_does_not_overwrite_fields_the_caller_set(app_logger: Any) -> None:
    logger, records = app_logger

    async def body(step: StepContext) -> None:
        logger.info("custom", extra={"operationName": "caller-chosen"})

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(body, name="real")

    await LocalRunner(handler).run()
    (record,) = records.records
    assert record.operationName == "caller-chosen"


@pytest.mark.anyio
@pytest.mark.parametrize("drop_replayed", [True, False])
async def test_filter_drops_replayed_records_unless_told_not_to(drop_replayed: bool) -> None:
    logger = logging.getLogger(f"test_logging.replay.{drop_replayed}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler_ = ListHandler()
    handler_.addFilter(DurableLogFilter(drop_replayed=drop_replayed))
    logger.addHandler(handler_)
    try:

        @durable_execution
        async def handler(event: Any, ctx: DurableContext) -> None:
            logger.info("before the wait")
            await ctx.wait(seconds=5)
            logger.info("after the wait")

        result = await LocalRunner(handler).run()
    finally:
        logger.removeHandler(handler_)
    assert result.invocations == 2
    messages = [r.getMessage() for r in handler_.records]
    if drop_replayed:
        assert messages == ["before the wait", "after the wait"]
    else:
        assert messages == ["before the wait", "before the wait", "after the wait"]


@pytest.mark.anyio
async def test_ctx_logger_is_silent_during_replay(sdk_logger: Any) -> None:
    logger, records = sdk_logger

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> None:
        for i in range(3):
            ctx.logger.info("step %d next", i)
            await ctx.step(lambda _: None, name=f"s{i}")
            await ctx.wait(seconds=1)
        ctx.logger.info("done")

    result = await LocalRunner(handler).run()
    assert result.invocations == 4
    assert [r.getMessage() for r in records.records] == [
        "step 0 next",
        "step 1 next",
        "step 2 next",
        "done",
    ]
