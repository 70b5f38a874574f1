"""Human approval: a callback handed to a reviewer, answered within a day or escalated.

The workflow asks for a review (``wait_for_callback``: the submitter step hands the callback
ID to the review desk) and suspends; no Lambda runs while the reviewer thinks. The answer
arrives through ``SendDurableExecutionCallbackSuccess`` (``examples/approval_service.py``
is a webhook service that sends it) and the workflow publishes or rejects the document.
With no answer in a day, the callback times out and the document is escalated.

The review desk is ``event["review_url"]`` (the approval service's ``/reviews``) when
given; otherwise the request lands in ``OUTBOX`` in this process (the local run below, or
``durable-async run``, where the callback ID shows in the history)::

    python examples/human_approval.py
    durable-async run examples/human_approval.py:handler --input '{"document": "q3.pdf"}'
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

#: Review requests when no review desk URL is given (stands in for an email or a queue).
OUTBOX: list[dict[str, str]] = []
REVIEW_TIMEOUT_SECONDS = 86_400


async def request_review(step: StepContext, callback_id: str, request: dict[str, Any]) -> None:
    """Hand the callback ID to the review desk; the reviewer's answer completes it."""
    url = request.get("review_url")
    if url is None:
        OUTBOX.append({"callback_id": callback_id, "document": request["document"]})
        return
    import aiohttp  # only the service-backed variant needs it

    body = {"callback_id": callback_id, "document": request["document"]}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        response.raise_for_status()  # a failed hand-over is retried by wait_for_callback
    step.logger.info("review of %s requested", request["document"])


async def publish(step: StepContext, document: str) -> str:
    return f"published {document}"


async def escalate(step: StepContext, document: str) -> str:
    return f"escalated {document}: nobody reviewed it in a day"


@durable_execution
async def handler(event: dict[str, Any], ctx: DurableContext) -> str:
    document = event["document"]

    async def submit(callback_id: str, step: StepContext) -> None:
        await request_review(step, callback_id, event)

    try:
        decision = await ctx.wait_for_callback(
            submit,
            name="review",
            config=WaitForCallbackConfig(timeout=REVIEW_TIMEOUT_SECONDS, serdes=JsonSerDes()),
        )
    except CallbackTimeoutError:
        return str(await ctx.step(escalate, document, name="escalate"))
    if not decision["approved"]:
        return f"rejected {document}: {decision.get('reason', 'no reason given')}"
    return str(await ctx.step(publish, document, name="publish"))


async def main() -> str:
    OUTBOX.clear()
    runner = LocalRunner(handler, pause_on_callbacks=True)
    first = await runner.run({"document": "q3-report.pdf"})
    print(f"{first.status}: waiting for a review of {OUTBOX[-1]['document']}")
    # The reviewer approves: what SendDurableExecutionCallbackSuccess does on the service.
    runner.backend.complete_callback(OUTBOX[-1]["callback_id"], json.dumps({"approved": True}))
    final = await runner.resume(first.arn)
    print(f"{final.status}: {final.result}")
    return str(final.result)


if __name__ == "__main__":
    asyncio.run(main())
