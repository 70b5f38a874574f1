"""The examples run as documented, so the documentation cannot rot.

Workflows run on ``durable_async.testing.LocalRunner`` (virtual clock); the approval
service runs as a real aiohttp server on loopback against AWS's dex-local-runner.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiobotocore.session import get_session
from aiohttp import web
from dex_harness import (
    REGION,
    DexRunner,
    InvokeEndpoint,
    wait_terminal,
)

from durable_async import AioBotocoreClient, DurableHandler
from durable_async.testing import LocalRunner

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKFLOWS = ["order_workflow", "human_approval", "batch_fanout", "agent_loop", "trip_saga"]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_workflow_example_has_a_module_level_handler(name: str) -> None:
    # What `durable-async run examples/NAME.py:handler` loads.
    assert isinstance(load(name).handler, DurableHandler)


# -- (a) order processing: a saga that compensates when payment fails after a wait -------


@pytest.mark.anyio
async def test_order_saga_confirms_after_a_retried_charge_and_releases_stock_when_declined() -> (
    None
):
    confirmed, cancelled = await load("order_workflow").main()
    assert confirmed == (
        "SUCCEEDED",
        {"order": "o-visa", "status": "confirmed", "payment": "payment-o-visa"},
        [
            "reserve book, lamp",
            "charge attempt 1",
            "charge attempt 2",
            "notify o-visa: confirmed",
        ],
    )
    assert cancelled == (
        "SUCCEEDED",
        {
            "order": "o-declined",
            "status": "cancelled",
            "reason": "card declined for order o-declined",
        },
        [
            "reserve book, lamp",
            "charge attempt 1",
            "charge attempt 2",
            "release reservation-o-declined",  # the compensation, once
            "notify o-declined: cancelled",
        ],
    )


@pytest.mark.anyio
async def test_order_saga_charges_only_after_the_cancellation_window() -> None:
    example = load("order_workflow")
    result = await LocalRunner(example.handler).run({"card": "visa"})
    names = [op.name for op in result.operations if op.name]
    assert names.index("cancellation-window") < names.index("charge-card")
    (window,) = [op for op in result.operations if op.name == "cancellation-window"]
    assert window.wait_details is not None
    assert window.end_timestamp is not None
    assert window.start_timestamp is not None
    assert (window.end_timestamp - window.start_timestamp).total_seconds() >= 30 * 60


# -- (b) human approval via a callback with a timeout ------------------------------------


@pytest.mark.anyio
async def test_human_approval_publishes_after_the_callback() -> None:
    assert await load("human_approval").main() == "published q3-report.pdf"


@pytest.mark.anyio
async def test_human_approval_reports_a_rejection_with_its_reason() -> None:
    example = load("human_approval")
    runner = LocalRunner(example.handler, pause_on_callbacks=True)
    first = await runner.run({"document": "draft.pdf"})
    assert first.status == "PENDING"
    decision = json.dumps({"approved": False, "reason": "typos"})
    runner.backend.complete_callback(example.OUTBOX[-1]["callback_id"], decision)
    final = await runner.resume(first.arn)
    assert final.result == "rejected draft.pdf: typos"


@pytest.mark.anyio
async def test_human_approval_escalates_when_nobody_answers_in_a_day() -> None:
    example = load("human_approval")
    result = await LocalRunner(example.handler).run({"document": "memo.pdf"})  # time skips
    assert result.status == "SUCCEEDED"
    assert result.result == "escalated memo.pdf: nobody reviewed it in a day"
    assert [op.name for op in result.operations if op.name == "escalate"] == ["escalate"]


@pytest.fixture
async def approval_service(
    dex_runner: DexRunner, fake_aws_env: None
) -> AsyncIterator[tuple[str, web.Application, Any]]:
    """The approval service on loopback; its workflows run on dex-local-runner."""
    approval = load("human_approval")
    service = load("approval_service")
    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await approval.handler.invoke_async(event, None, client=client)  # type: ignore[no-any-return]

    try:
        async with (
            InvokeEndpoint({"approval": invoke}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):

            async def start(event: dict[str, Any]) -> str:
                return await asyncio.to_thread(
                    dex_runner.start_execution, "approval", event, lambda_endpoint=endpoint.url
                )

            app = service.make_app(start, endpoint_url=dex_runner.url)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                yield f"http://127.0.0.1:{runner.addresses[0][1]}", app, lam
            finally:
                await runner.cleanup()
            assert endpoint.errors == []
    finally:
        await client.aclose()


@pytest.mark.runner
@pytest.mark.anyio
async def test_approval_service_webhook_completes_the_workflows_callback(
    approval_service: tuple[str, web.Application, Any],
) -> None:
    url, app, lam = approval_service
    service = sys.modules["example_approval_service"]
    desk = app[service.DESK]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/documents", json={"document": "q3-report.pdf"}) as started:
            assert started.status == 202
            arn = (await started.json())["execution"]
        await asyncio.wait_for(desk.wait_for(1), 30)  # the workflow asked for its review
        async with http.get(f"{url}/reviews") as listed:
            (review,) = await listed.json()
        assert review["document"] == "q3-report.pdf"
        assert set(review) == {"review", "document"}  # no callback ID leaves the service
        decision_url = f"{url}/reviews/{review['review']}"
        filed = desk.open[review["review"]]

        async with http.post(decision_url, json={"approved": True}) as decided:
            assert decided.status == 204
        described = await wait_terminal(lam, arn)
        assert described["Status"] == "SUCCEEDED"
        assert json.loads(described["Result"]) == "published q3-report.pdf"

        # The webhook delivered twice: the review is gone from the desk...
        async with http.post(decision_url, json={"approved": True}) as again:
            assert again.status == 404
        # ...and had the desk kept it, the service would say the callback is closed.
        desk.open[review["review"]] = filed
        async with http.post(decision_url, json={"approved": False}) as closed:
            assert closed.status == 409
        async with http.post(f"{url}/reviews/nope", json={"approved": True}) as unknown:
            assert unknown.status == 404
        desk.open[review["review"]] = filed
        async with http.post(decision_url, data=b"not json") as bad:
            assert bad.status == 400


# -- (c) fan-out/fan-in with a concurrency limit -----------------------------------------


@pytest.mark.anyio
async def test_batch_fanout_bills_every_account_at_most_four_at_a_time() -> None:
    example = load("batch_fanout")
    outcome = await example.main(accounts=20)
    assert outcome["status"] == "SUCCEEDED"
    assert outcome["result"] == {
        "billed": 19,
        "total_cents": outcome["result"]["total_cents"],
        "failed": ["acct-13: no payment method on file for acct-13"],
    }
    assert outcome["result"]["total_cents"] > 0
    assert outcome["peak"] == example.MAX_CONCURRENCY  # the limit was reached, never passed


@pytest.mark.anyio
async def test_batch_fanout_fails_when_more_than_a_tenth_of_the_accounts_fail() -> None:
    example = load("batch_fanout")
    unbillable = ["acct-02", "acct-03", "acct-05"]
    result = await LocalRunner(example.handler).run({"accounts": 20, "unbillable": unbillable})
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.message == "no payment method on file for acct-02"
    # The batch stopped once failures passed 10%: not every account was even started.
    started = {op.name for op in result.operations if op.name and op.name.startswith("acct-")}
    assert len(started) < 20


# -- (d) an agent loop: API calls in steps with retries, polling with waits --------------


@pytest.fixture
async def agent_api() -> AsyncIterator[tuple[str, Any]]:
    """The example's fake agent API as a real aiohttp server on loopback."""
    example = load("agent_loop")
    desk = example.ToolDesk(polls_per_job=3, unavailable_first=1)
    runner = web.AppRunner(example.make_fake_api(desk), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", desk
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_agent_loop_retries_the_api_and_polls_jobs_across_invocations(
    agent_api: tuple[str, Any],
) -> None:
    url, desk = agent_api
    example = sys.modules["example_agent_loop"]
    result = await LocalRunner(example.handler).run({"goal": "q3 sales", "api_url": url})
    assert result.status == "SUCCEEDED"
    assert result.result == {
        "answer": "answer: summarize(search(q3 sales))",
        "turns": 3,
        "history": [
            {"tool": "search", "output": "search(q3 sales)"},
            {"tool": "summarize", "output": "summarize(search(q3 sales))"},
        ],
    }
    # The first request met a 503 and was retried after a durable delay; replays made no
    # requests (each answer is recorded); each job was polled until done, three times.
    assert desk.requests == [
        "plan", "plan", "start", "status", "status", "status",
        "plan", "start", "status", "status", "status",
        "plan",
    ]  # fmt: skip
    (first_plan,) = [op for op in result.operations if op.name == "plan-1"]
    assert first_plan.step_details is not None
    assert first_plan.step_details.attempt == 2
    # Each wait between polls suspended the invocation: 2 retry/poll waits per job + 1 retry.
    assert result.invocations == 1 + 1 + 2 + 2


@pytest.mark.anyio
async def test_agent_loop_runs_without_an_api_on_the_in_process_stand_in() -> None:
    example = load("agent_loop")
    assert (await example.main())["answer"] == "answer: summarize(search(q3 sales))"


# -- the saga of the README's concurrency section ----------------------------------------


@pytest.mark.anyio
async def test_trip_saga_compensates_and_notifies_once_after_the_wait() -> None:
    assert await load("trip_saga").main() == [
        "SUCCEEDED payment-1: reserve Lisbon; charge visa; notify ana",
        "FAILED card declined: reserve Lisbon; charge declined; cancel hotel-lisbon; notify ana",
    ]
