"""Fan-out/fan-in: bill a batch of accounts, at most four at a time, then total it up.

``ctx.map`` runs one branch per account, each in its own child context (its steps have
their own IDs, so a branch that retries never disturbs another), as tasks on one loop: no
thread per branch. ``max_concurrency=4`` bounds how many are in flight (a branch waiting on
a retry keeps its slot); up to 10% of the accounts may fail without failing the run;
beyond that the batch stops starting branches and the run fails. The fan-in is a step
over the ``BatchResult``: what was billed, what failed and why.

Run it locally::

    python examples/batch_fanout.py
    durable-async run examples/batch_fanout.py:handler --input '{"accounts": 12}'
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from durable_async import (
    CompletionConfig,
    CompletionReason,
    DurableContext,
    MapConfig,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async.testing import LocalRunner

MAX_CONCURRENCY = 4


class Concurrency:
    """How many branches are in flight, and the most there ever were (for the test)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        self.now -= 1


IN_FLIGHT = Concurrency()


async def usage(step: StepContext, account: str) -> int:
    await asyncio.sleep(0)  # a real body awaits a metering API here; let others run
    return 10 * (1 + sum(map(ord, account)) % 7)


async def charge(step: StepContext, account: str, cents: int, unbillable: list[str]) -> str:
    if account in unbillable:
        raise ValueError(f"no payment method on file for {account}")
    return f"invoice-{account}-{cents}"


def biller(unbillable: list[str]) -> Any:
    """The branch body: meter an account's usage, then charge it."""

    async def bill(
        item_ctx: DurableContext, account: str, index: int, accounts: Sequence[str]
    ) -> dict[str, Any]:
        IN_FLIGHT.enter()
        try:
            cents = await item_ctx.step(usage, account, name="usage")
            invoice = await item_ctx.step(
                charge,
                account,
                cents,
                unbillable,
                name="charge",
                config=StepConfig(RetryPresets.none()),
            )
            return {"account": account, "cents": cents, "invoice": invoice}
        finally:
            IN_FLIGHT.leave()

    return bill


async def summarize(
    step: StepContext, billed: list[dict[str, Any]], failed: list[str]
) -> dict[str, Any]:
    return {
        "billed": len(billed),
        "total_cents": sum(item["cents"] for item in billed),
        "failed": failed,
    }


@durable_execution
async def handler(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    accounts = [f"acct-{n:02d}" for n in range(1, int(event.get("accounts", 20)) + 1)]
    unbillable = list(event.get("unbillable", ["acct-13"]))
    batch = await ctx.map(
        accounts,
        biller(unbillable),
        name="bill-accounts",
        config=MapConfig(
            max_concurrency=MAX_CONCURRENCY,
            completion_config=CompletionConfig(tolerated_failure_percentage=10),
            item_namer=lambda account, index: account,
        ),
    )
    if batch.completion_reason is CompletionReason.FAILURE_TOLERANCE_EXCEEDED:
        batch.throw_if_error()  # more than 10% failed: the run fails with the first error
    failed = [
        f"{accounts[item.index]}: {item.error.message if item.error else 'failed'}"
        for item in batch.failed()
    ]
    return await ctx.step(summarize, batch.get_results(), failed, name="summarize")


async def main(accounts: int = 20) -> dict[str, Any]:
    IN_FLIGHT.peak = 0
    result = await LocalRunner(handler).run({"accounts": accounts})
    print(f"{result.status} after {result.invocations} invocation(s): {result.result}")
    print(f"    at most {IN_FLIGHT.peak} accounts were billed at once")
    return {"status": str(result.status), "result": result.result, "peak": IN_FLIGHT.peak}


if __name__ == "__main__":
    asyncio.run(main())
