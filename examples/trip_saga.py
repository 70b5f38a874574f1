"""A saga that compensates across a durable wait, written as plain ``try``/``finally``.

The hotel is held for a day before the card is charged. If the charge fails, the hotel is
cancelled; either way the traveller is notified. The wait suspends the invocation, yet
neither the compensation nor the notification runs then: operations are refused while an
invocation suspends, so they run once, in the invocation where the ``try`` really ends.

Run it locally (the day passes on a virtual clock)::

    python examples/trip_saga.py
    durable-async run examples/trip_saga.py:handler \
        --input '{"city": "Lisbon", "card": "visa", "traveller": "ana"}'
"""

from __future__ import annotations

import asyncio
from typing import Any

from durable_async import (
    DurableContext,
    RetryPresets,
    StepConfig,
    StepContext,
    StepError,
    durable_execution,
)
from durable_async.testing import LocalRunner

#: What the steps did, in order (a real saga would call a booking and a payment API).
JOURNAL: list[str] = []


async def reserve_hotel(step: StepContext, trip: dict[str, Any]) -> str:
    JOURNAL.append(f"reserve {trip['city']}")
    return f"hotel-{trip['city'].lower()}"


async def charge_card(step: StepContext, trip: dict[str, Any]) -> str:
    JOURNAL.append(f"charge {trip['card']}")
    if trip["card"] == "declined":
        raise ValueError("card declined")
    return "payment-1"


async def cancel_hotel(step: StepContext, hotel: str) -> None:
    JOURNAL.append(f"cancel {hotel}")


async def notify(step: StepContext, trip: dict[str, Any]) -> None:
    JOURNAL.append(f"notify {trip['traveller']}")


@durable_execution
async def handler(trip: dict[str, Any], ctx: DurableContext) -> str:
    hotel = await ctx.step(reserve_hotel, trip, name="reserve-hotel")
    try:
        await ctx.wait(hours=24, name="hold")  # suspends; nothing below runs yet
        return await ctx.step(
            charge_card, trip, name="charge", config=StepConfig(RetryPresets.none())
        )
    except StepError:
        await ctx.step(cancel_hotel, hotel, name="cancel-hotel")  # compensation
        raise
    finally:
        await ctx.step(notify, trip, name="notify")  # once, when the try really ends


async def main() -> list[str]:
    outcomes = []
    for card in ("visa", "declined"):
        JOURNAL.clear()
        trip = {"city": "Lisbon", "card": card, "traveller": "ana"}
        result = await LocalRunner(handler).run(trip)
        outcome = result.result if result.error is None else result.error.message
        print(f"{card}: {result.status} after {result.invocations} invocations: {outcome}")
        print("   ", "; ".join(JOURNAL))
        outcomes.append(f"{result.status} {outcome}: {'; '.join(JOURNAL)}")
    return outcomes


if __name__ == "__main__":
    asyncio.run(main())
