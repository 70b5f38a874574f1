"""``shop.py`` with its wait moved before its step: replaying old histories must fail."""

from __future__ import annotations

from typing import Any

from durable_async import (
    DurableContext,
    JsonSerDes,
    StepConfig,
    StepContext,
    WaitForCallbackConfig,
    durable_execution,
)
from durable_async._retry import RetryStrategyConfig, create_retry_strategy

_NO_RETRY = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=1)))


@durable_execution
async def order(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    ctx.logger.info("ordering %s", event["item"])
    await ctx.wait(minutes=5, name="cool-off")
    price = await ctx.step(lambda _: 42, name="price")
    receipt = await ctx.invoke("receipt", {"price": price}, name="receipt")
    return {"item": event["item"], "price": price, "receipt": receipt}


@durable_execution
async def receipt(event: dict[str, Any], ctx: DurableContext) -> str:
    return f"receipt for {event['price']}"


def _decline(step: StepContext) -> None:
    raise ValueError("card declined")


@durable_execution
async def broken(event: Any, ctx: DurableContext) -> None:
    await ctx.step(lambda _: "ok", name="reserve")
    await ctx.step(_decline, name="charge", config=_NO_RETRY)


async def _ask(callback_id: str, step: StepContext) -> None:
    return None


@durable_execution
async def approval(event: dict[str, Any], ctx: DurableContext) -> str:
    decision = await ctx.wait_for_callback(
        _ask, name="review", config=WaitForCallbackConfig(timeout=86_400, serdes=JsonSerDes())
    )
    return "approved" if decision["approved"] else "rejected"


not_a_handler = 42
