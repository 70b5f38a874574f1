"""An order workflow: steps, a durable wait, gathered steps, a retry policy.

Deploy ``handler`` as a Lambda durable function, or run this file to execute it locally on
the in-memory backend (the 30-second wait is skipped on a virtual clock)::

    python examples/order_workflow.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from durable_async import (
    DurableContext,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async.testing import LocalRunner


async def load_order(step: StepContext, order_id: str) -> dict[str, Any]:
    step.logger.info("loading order %s", order_id)
    return {"id": order_id, "total": 42, "items": ["book", "lamp"]}


def charge_card(step: StepContext, order: dict[str, Any]) -> str:
    """A plain function: it runs in a worker thread, never blocking the loop."""
    if step.attempt == 1:
        raise ConnectionError("payment gateway timed out")  # retried after a durable delay
    return f"charged {order['total']}"


async def reserve_stock(step: StepContext, order: dict[str, Any]) -> list[str]:
    return [f"reserved {item}" for item in order["items"]]


@durable_execution
async def handler(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    order = await ctx.step(load_order, event["order_id"], name="load")
    await ctx.wait(seconds=30)
    charged, reserved = await asyncio.gather(
        ctx.step(charge_card, order, config=StepConfig(retry_strategy=RetryPresets.transient())),
        ctx.step(reserve_stock, order),
    )
    ctx.logger.info("order %s done", order["id"])
    return {"order": order["id"], "payment": charged, "stock": reserved}


async def main() -> dict[str, Any]:
    result = await LocalRunner(handler).run({"order_id": "o-1"})
    print(f"{result.status} after {result.invocations} invocations: {result.result}")
    return {"status": str(result.status), "result": result.result}


if __name__ == "__main__":
    asyncio.run(main())
