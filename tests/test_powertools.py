"""AWS Lambda Powertools inside durable handlers: logger context injection and idempotency.

Powertools recognises a durable context by duck typing (``lambda_context`` and ``state``),
reads the Lambda context from ``ctx.lambda_context``, and ``@idempotent`` counts
``ctx.state.operations`` to tell a replay from a first invocation. Powertools' decorators
are synchronous, so they go where a plain callable is called: ``inject_lambda_context`` on
an ``async def`` the handler awaits (it tags the logger, then returns the coroutine), and
``@idempotent`` / ``@idempotent_function`` on a plain step body.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import uuid
from typing import Any

import pytest

pytest.importorskip(
    "aws_lambda_powertools",
    reason="aws-lambda-powertools is not installed (pip install -e '.[test]')",
)

from aws_lambda_powertools import Logger
from aws_lambda_powertools.shared.functions import is_durable_context
from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import (
    DataRecord,
)

from durable_async import DurableContext, DurableLogFilter, StepContext, durable_execution
from durable_async.testing import LocalRunner


class MemoryPersistenceLayer(BasePersistenceLayer):
    """Idempotency records in a dict, with DynamoDB's conditional-put rules."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None:
            now_ms = int(dt.datetime.now().timestamp() * 1000)
            in_progress_expired = (
                existing.status == "INPROGRESS"
                and existing.in_progress_expiry_timestamp is not None
                and existing.in_progress_expiry_timestamp < now_ms
            )
            if not existing.is_expired and not in_progress_expired:
                raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.anyio
async def test_context_is_what_powertools_detects_as_durable() -> None:
    seen: list[tuple[bool, Any, int]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        seen.append((is_durable_context(ctx), ctx.lambda_context, len(ctx.state.operations)))
        await ctx.wait(seconds=1)

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    (first_durable, first_lambda, first_ops), (replay_durable, _, replay_ops) = seen
    assert first_durable
    assert replay_durable
    assert first_lambda.function_name == "local"
    # As with AWS's SDK, a first invocation knows only the EXECUTION operation; a replay
    # knows more, which is how Powertools' @idempotent tells the two apart.
    assert first_ops == 1
    assert replay_ops > 1


@pytest.mark.anyio
async def test_logger_inject_lambda_context_inside_durable_handler() -> None:
    stream = io.StringIO()
    logger = Logger(service=f"powertools-{uuid.uuid4().hex}", stream=stream)
    # Powertools logs during replays too; DurableLogFilter drops those records and adds
    # the durable fields (executionArn, ...), as for any other logger.
    logger.addFilter(DurableLogFilter())

    @logger.inject_lambda_context
    async def process(event: dict[str, Any], ctx: DurableContext) -> str:
        logger.info("before wait", order=event["order_id"])
        await ctx.wait(seconds=1)
        logger.info("after wait")
        return "done"

    @durable_execution
    async def handler(event: dict[str, Any], ctx: DurableContext) -> str:
        return await process(event, ctx)

    result = await LocalRunner(handler).run({"order_id": "o-1"})
    assert result.status == "SUCCEEDED"
    assert result.result == "done"
    before, after = _json_lines(stream)
    assert (before["message"], after["message"]) == ("before wait", "after wait")
    for record in (before, after):
        assert record["function_name"] == "local"
        assert record["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:local"
        assert record["function_memory_size"] == 128
        assert record["executionArn"] == result.arn
    assert before["order"] == "o-1"
    # Each invocation injects its own Lambda context: the wait ended the first one.
    assert before["function_request_id"] != after["function_request_id"]


@pytest.mark.anyio
async def test_idempotent_function_on_a_step_body_returns_the_stored_result() -> None:
    store = MemoryPersistenceLayer()
    config = IdempotencyConfig(event_key_jmespath="id")
    charges: list[str] = []

    # idempotent_function is typed as returning Any, so strict mypy flags the decorator.
    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="order", persistence_store=store, config=config
    )
    def charge(step: StepContext, *, order: dict[str, Any]) -> dict[str, Any]:
        charges.append(order["id"])
        return {"charged": order["id"], "total": order["total"]}

    @durable_execution
    async def handler(event: dict[str, Any], ctx: DurableContext) -> Any:
        config.register_lambda_context(ctx.lambda_context)
        receipt = await ctx.step(functools.partial(charge, order=event), name="charge")
        await ctx.wait(seconds=1)
        return receipt

    runner = LocalRunner(handler)
    first = await runner.run({"id": "o-7", "total": 42})
    # A second execution with the same order (a client retry, a duplicate event).
    second = await runner.run({"id": "o-7", "total": 42})
    assert first.status == second.status == "SUCCEEDED"
    assert first.arn != second.arn
    assert first.result == second.result == {"charged": "o-7", "total": 42}
    assert charges == ["o-7"]
    (record,) = store.records.values()
    assert record.status == "COMPLETED"


@pytest.mark.anyio
async def test_idempotent_receives_the_durable_context() -> None:
    store = MemoryPersistenceLayer()
    config = IdempotencyConfig(event_key_jmespath="order_id")
    contexts: list[Any] = []
    reservations: list[str] = []

    @idempotent(persistence_store=store, config=config)
    def reserve(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
        contexts.append(config.lambda_context)
        reservations.append(event["order_id"])
        return {"reserved": event["order_id"]}

    @durable_execution
    async def handler(event: dict[str, Any], ctx: DurableContext) -> Any:
        # A plain step body: Powertools' decorators cannot wrap a coroutine function.
        reservation = await ctx.step(lambda _: reserve(event, ctx), name="reserve")
        await ctx.wait(seconds=1)
        return reservation

    runner = LocalRunner(handler)
    first = await runner.run({"order_id": "o-9"})
    second = await runner.run({"order_id": "o-9"})
    assert first.result == second.result == {"reserved": "o-9"}
    assert reservations == ["o-9"]
    # Powertools unwrapped the durable context and registered the Lambda context in it.
    (registered,) = contexts
    assert registered.function_name == "local"
    assert config.lambda_context is not None


@pytest.mark.anyio
async def test_durable_execution_takes_a_handler_decorated_by_inject_lambda_context() -> None:
    """Powertools wraps the ``async def`` in a plain function that returns its coroutine."""
    stream = io.StringIO()
    logger = Logger(service=f"powertools-{uuid.uuid4().hex}", stream=stream)
    logger.addFilter(DurableLogFilter())

    @durable_execution
    @logger.inject_lambda_context
    async def handler(event: dict[str, Any], ctx: DurableContext) -> str:
        logger.info("handling", order=event["order_id"])
        await ctx.wait(seconds=1)
        return "done"

    result = await LocalRunner(handler).run({"order_id": "o-2"})
    assert result.status == "SUCCEEDED", result.error
    assert result.result == "done"
    (record,) = _json_lines(stream)  # the replay's record is dropped by DurableLogFilter
    assert record["message"] == "handling"
    assert record["function_name"] == "local"
    assert record["executionArn"] == result.arn


def test_a_plain_function_is_still_refused_unless_it_wraps_an_async_def() -> None:
    def plain(event: Any, ctx: DurableContext) -> str:
        return "sync"

    with pytest.raises(TypeError, match="is not a coroutine function"):
        durable_execution(plain)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_wrapper_that_does_not_return_the_coroutine_fails_the_execution_clearly() -> None:
    async def inner(event: Any, ctx: DurableContext) -> str:
        return "never"

    @functools.wraps(inner)
    def swallowing(event: Any, ctx: DurableContext) -> str:
        inner(event, ctx).close()  # a wrapper that drops the coroutine
        return "not awaitable"

    handler: Any = durable_execution(swallowing)  # type: ignore[arg-type]
    result = await LocalRunner(handler).run({})
    assert result.status == "FAILED"
    assert result.error is not None
    assert "returned str, not the coroutine of its `async def`" in (result.error.message or "")
