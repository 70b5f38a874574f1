"""Human approval: a callback handed to another system, a timeout, a chained invocation.

Run locally::

    python examples/human_approval.py

The script plays the reviewer: it completes the callback on the in-memory backend, then
resumes the execution, as the service would when ``SendDurableExecutionCallbackSuccess``
arrives.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from durable_async import (
    CallbackTimeoutError,
    DurableContext,
    JsonSerDes,
    StepContext,
    WaitForCallbackConfig,
    durable_execution,
)
from durable_async.testing import LocalRunner

OUTBOX: list[dict[str, str]] = []  # stands in for an email or a queue


async def request_review(callback_id: str, step: StepContext, document: str) -> None:
    OUTBOX.append({"callback_id": callback_id, "document": document})


@durable_execution
async def publish(event: dict[str, Any], ctx: DurableContext) -> str:
    """The target of the chained invocation."""
    return f"published {event['document']}"


@durable_execution
async def handler(event: dict[str, Any], ctx: DurableContext) -> str:
    document = event["document"]

    async def submit(callback_id: str, step: StepContext) -> None:
        await request_review(callback_id, step, document)

    try:
        decision = await ctx.wait_for_callback(
            submit,
            name="review",
            config=WaitForCallbackConfig(timeout=86_400, serdes=JsonSerDes()),
        )
    except CallbackTimeoutError:
        return "nobody reviewed it in a day"
    if not decision["approved"]:
        return f"rejected: {decision['reason']}"
    return str(await ctx.invoke("publish", {"document": document}, name="publish"))


async def main() -> str:
    runner = LocalRunner(handler, functions={"publish": publish}, pause_on_callbacks=True)
    first = await runner.run({"document": "q3-report.pdf"})
    print(f"{first.status}: waiting for {OUTBOX[-1]}")
    runner.backend.complete_callback(OUTBOX[-1]["callback_id"], json.dumps({"approved": True}))
    final = await runner.resume(first.arn)
    print(f"{final.status}: {final.result}")
    return str(final.result)


if __name__ == "__main__":
    asyncio.run(main())
