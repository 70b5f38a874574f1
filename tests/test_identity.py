"""Operation IDs: the values AWS's Python SDK computes, allocated in call order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import sent_updates

from durable_async import DurableContext, StepContext, durable_execution
from durable_async._identity import operation_id
from durable_async._wire.enums import OperationAction, OperationType
from durable_async.testing import LocalRunner

# Computed once with aws_durable_execution_sdk_python.identifier.OperationIdNamespace:
#   OperationIdNamespace(None).create_id_for_step(n) and
#   OperationIdNamespace(<root 1>).create_id_for_step(n).
ROOT_1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
ROOT_2 = "c5faca15ac2f93578b39ef4b6bbb871bdedce4ddd584fd31f0bb66fade3947e6"
ROOT_3 = "6f760b9e9eac89f07ab0223b0f4acb04d1e355d893a1b86a83f4d4b405adee99"
CHILD_OF_1_1 = "974bfc6321e227b0ff101342eaf19b336f002dc6cc99c18f0941a7755cc20fc4"
CHILD_OF_1_2 = "9d8bc609108ec7b3600d6cceec22d18553e3e1ec52a3568cb251464a3d39d24f"


@pytest.mark.parametrize(
    ("prefix", "position", "expected"),
    [
        (None, 1, ROOT_1),
        (None, 2, ROOT_2),
        (None, 3, ROOT_3),
        (ROOT_1, 1, CHILD_OF_1_1),
        (ROOT_1, 2, CHILD_OF_1_2),
    ],
)
def test_operation_id_matches_aws(prefix: str | None, position: int, expected: str) -> None:
    assert operation_id(prefix, position) == expected


def test_empty_prefix_is_the_root() -> None:
    assert operation_id("", 1) == ROOT_1


@pytest.mark.anyio
async def test_handler_ops_get_aws_ids_in_order() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(lambda _: 1, name="one")
        await ctx.wait(seconds=1)
        await ctx.step(lambda _: 3, name="three")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    started = [
        (u.id, u.type) for u in sent_updates(runner.backend) if u.action is OperationAction.START
    ]
    assert started == [
        (ROOT_1, OperationType.STEP),
        (ROOT_2, OperationType.WAIT),
        (ROOT_3, OperationType.STEP),
    ]


@pytest.mark.anyio
async def test_ids_follow_call_order_not_completion_order() -> None:
    """Under gather, the first step called gets ID 1 even though it finishes last."""
    second_done = asyncio.Event()
    finished: list[str] = []

    async def first(_: StepContext) -> str:
        await second_done.wait()
        finished.append("first")
        return "first"

    async def second(_: StepContext) -> str:
        finished.append("second")
        second_done.set()
        return "second"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        return list(await asyncio.gather(ctx.step(first), ctx.step(second)))

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == ["first", "second"]
    assert finished == ["second", "first"]  # bodies really did finish in reverse
    ids_by_name = {
        u.name: u.id for u in sent_updates(runner.backend) if u.action is OperationAction.SUCCEED
    }
    assert ids_by_name == {"first": ROOT_1, "second": ROOT_2}
    succeeded_order = [
        u.name for u in sent_updates(runner.backend) if u.action is OperationAction.SUCCEED
    ]
    assert succeeded_order == ["second", "first"]


@pytest.mark.anyio
async def test_ids_are_allocated_at_call_time() -> None:
    """Creating the coroutines allocates IDs even if they are awaited in another order."""

    async def body(_: StepContext, label: str) -> str:
        return label

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        a = ctx.step(body, "a", name="a")
        b = ctx.step(body, "b", name="b")
        return [await b, await a]

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == ["b", "a"]
    ids_by_name = {
        u.name: u.id for u in sent_updates(runner.backend) if u.action is OperationAction.SUCCEED
    }
    assert ids_by_name == {"a": ROOT_1, "b": ROOT_2}


@pytest.mark.anyio
async def test_ops_in_a_child_context_get_aws_child_ids() -> None:
    async def child(child_ctx: DurableContext) -> int:
        first = await child_ctx.step(lambda _: 1, name="inner1")
        second = await child_ctx.step(lambda _: 2, name="inner2")
        return first + second

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        total = await ctx.run_in_child_context(child, name="child")
        return total + await ctx.step(lambda _: 10, name="after")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == 13
    ids = {u.name: (u.id, u.parent_id) for u in sent_updates(runner.backend)}
    assert ids == {
        "child": (ROOT_1, None),
        "inner1": (CHILD_OF_1_1, ROOT_1),
        "inner2": (CHILD_OF_1_2, ROOT_1),
        "after": (ROOT_2, None),
    }
