"""Plugin hooks against AWS's dex-local-runner: what the real input and responses carry.

The runner lists what changed while the execution was suspended in the invocation input's
``UpdatedOperationIds``; the wait it ended between invocations is reported ended once, in
the invocation that follows, and each checkpoint response's changes reach
``on_operation_change``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiobotocore.session import get_session
from dex_harness import (
    REGION,
    DexRunner,
    run_to_end,
)

from durable_async import (
    AioBotocoreClient,
    DurableContext,
    OperationChangeInfo,
    OperationStatus,
    StepContext,
    durable_execution,
)
from durable_async._identity import operation_id

pytestmark = [pytest.mark.runner, pytest.mark.anyio, pytest.mark.usefixtures("fake_aws_env")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    def __init__(self) -> None:
        self.first = False
        self.ends: list[tuple[str | None, OperationStatus, bool, bool]] = []
        self.changes: list[tuple[bool, str | None, OperationStatus, bool]] = []

    def on_invocation_start(self, info: Any) -> None:
        self.first = info.is_first_invocation

    def on_operation_end(self, info: Any) -> None:
        self.ends.append((info.name, info.status, info.is_replayed, self.first))

    def on_operation_change(self, info: OperationChangeInfo) -> None:
        for op_id, op in info.updated_operations.items():
            self.changes.append((self.first, op.name, op.status, op_id in info.operations))


async def greet(step: StepContext, name: str) -> str:
    return f"Hello, {name}!"


async def test_a_wait_the_runner_ended_is_reported_once_in_the_next_invocation(
    dex_runner: DexRunner,
) -> None:
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    async def workflow(event: Any, ctx: DurableContext) -> str:
        hello = await ctx.step(greet, "Ada", name="greet")
        await ctx.wait(1, name="pause")
        return await ctx.step(greet, hello, name="finish")

    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await workflow.invoke_async(event, None, client=client)

    try:
        described, endpoint = await run_to_end(dex_runner, "workflow", invoke)
    finally:
        await client.aclose()

    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED", described
    assert json.loads(described["Result"]) == "Hello, Hello, Ada!!"
    events = [event for _, event, _ in endpoint.invocations]
    assert len(events) == 2
    # The runner's input names the wait it ended while the execution was suspended.
    assert events[1].get("UpdatedOperationIds") == [operation_id(None, 2)]
    succeeded = OperationStatus.SUCCEEDED
    assert recorder.ends == [
        ("greet", succeeded, False, True),
        ("pause", succeeded, False, False),  # once, as news in the second invocation
        ("finish", succeeded, False, False),
    ]
    assert (True, "greet", succeeded, True) in recorder.changes
    assert (False, "finish", succeeded, True) in recorder.changes
    # Its start is a change; its end came between invocations, in no response.
    pause = [change for change in recorder.changes if change[1] == "pause"]
    assert pause == [(True, "pause", OperationStatus.STARTED, True)]


async def test_a_callback_answered_during_an_invocation_ends_once_across_invocations(
    dex_runner: DexRunner,
) -> None:
    # A checkpoint response carries the answer; the next input must not make it news again.
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    async def workflow(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback(name="approval")

        async def answer(step: StepContext) -> None:
            async with get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam:
                await lam.send_durable_execution_callback_success(
                    CallbackId=callback.callback_id, Result=b'"yes"'
                )

        await ctx.step(answer, name="answer")
        await ctx.step(greet, "Ada", name="greet")  # its response carries the answer
        await ctx.wait(1, name="pause")
        return str(await callback.result())

    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await workflow.invoke_async(event, None, client=client)

    try:
        described, endpoint = await run_to_end(dex_runner, "workflow", invoke)
    finally:
        await client.aclose()

    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED", described
    events = [event for _, event, _ in endpoint.invocations]
    assert len(events) == 2
    assert events[1].get("UpdatedOperationIds") == [operation_id(None, 4)]  # the wait only
    succeeded = OperationStatus.SUCCEEDED
    assert [end for end in recorder.ends if end[0] == "approval"] == [
        ("approval", succeeded, False, True)  # from the response, in the first invocation
    ]
