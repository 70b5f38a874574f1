"""Order processing as a saga: reserve, hold, charge; undo the reservation if payment fails.

Stock is reserved, then the order is held for 30 minutes (the customer may still cancel:
a durable wait, so no Lambda runs meanwhile), then the card is charged, with retries for
gateway timeouts. If the charge fails for good, the compensation releases the stock and
the order ends ``cancelled``; the customer is notified either way. Compensation is plain
``try``/``except``: operations are refused while an invocation suspends, so it runs once,
in the invocation where the charge really failed, not when the wait suspended.

Run it locally (the hold passes on a virtual clock)::

    python examples/order_workflow.py
    durable-async run examples/order_workflow.py:handler --input '{"card": "declined"}'
"""

from __future__ import annotations

import asyncio
from typing import Any

from durable_async import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepError,
    create_retry_strategy,
    durable_execution,
)
from durable_async.testing import LocalRunner

#: What the steps did, in order (a real saga would call inventory and payment services).
JOURNAL: list[str] = []

#: Gateway timeouts are retried (2 s, 4 s, 8 s); a declined card is not.
PAYMENT_RETRIES = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=4,
            initial_delay=Duration(2),
            backoff_rate=2,
            jitter_strategy=JitterStrategy.NONE,
            retryable_error_types=[TimeoutError],
        )
    )
)


class PaymentDeclined(Exception):
    """The payment provider refused the card; retrying will not help."""


async def reserve_stock(step: StepContext, order: dict[str, Any]) -> str:
    JOURNAL.append(f"reserve {', '.join(order['items'])}")
    return f"reservation-{order['order_id']}"


def charge_card(step: StepContext, order: dict[str, Any]) -> str:
    """A plain function: it runs in a worker thread, never blocking the loop."""
    JOURNAL.append(f"charge attempt {step.attempt}")
    if step.attempt == 1:
        raise TimeoutError("payment gateway timed out")  # retried after a durable delay
    if order["card"] == "declined":
        raise PaymentDeclined(f"card declined for order {order['order_id']}")
    return f"payment-{order['order_id']}"


async def release_stock(step: StepContext, reservation: str) -> None:
    JOURNAL.append(f"release {reservation}")


async def notify_customer(step: StepContext, order_id: str, outcome: str) -> None:
    JOURNAL.append(f"notify {order_id}: {outcome}")


@durable_execution
async def handler(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    order = {"order_id": "o-1", "items": ["book", "lamp"], "card": "visa", **event}
    reservation = await ctx.step(reserve_stock, order, name="reserve-stock")
    await ctx.wait(minutes=30, name="cancellation-window")
    try:
        payment = await ctx.step(charge_card, order, name="charge-card", config=PAYMENT_RETRIES)
    except StepError as failure:
        ctx.logger.warning("payment failed (%s); releasing the stock", failure.error_type)
        await ctx.step(release_stock, reservation, name="release-stock")  # compensation
        await ctx.step(notify_customer, order["order_id"], "cancelled", name="notify")
        return {"order": order["order_id"], "status": "cancelled", "reason": failure.message}
    await ctx.step(notify_customer, order["order_id"], "confirmed", name="notify")
    return {"order": order["order_id"], "status": "confirmed", "payment": payment}


async def main() -> list[tuple[str, dict[str, Any], list[str]]]:
    outcomes = []
    for card in ("visa", "declined"):
        JOURNAL.clear()
        result = await LocalRunner(handler).run({"order_id": f"o-{card}", "card": card})
        print(f"{card}: {result.status} after {result.invocations} invocations: {result.result}")
        print("   ", "; ".join(JOURNAL))
        outcomes.append((str(result.status), result.result, list(JOURNAL)))
    return outcomes


if __name__ == "__main__":
    asyncio.run(main())
