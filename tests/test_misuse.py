"""Misuse of the API fails at once, with a message that says what to do.

A coroutine or a value given where an operation takes a function raises ``TypeError`` at
the call, before the operation takes an ID or records anything (and the coroutine is
closed, so nothing warns or is reported as never awaited). A child context's body that
returns something that cannot be awaited fails the child with a ``TypeError`` naming the
function. A race over something that is not an operation raises ``ValidationError`` at
the call.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import sent_updates

from durable_async import (
    ChildContextError,
    DurableContext,
    DurableOperationError,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    StepContext,
    ValidationError,
    WaitStrategyConfig,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._plugin_types import DurableInstrumentationPlugin, UserFunctionStartInfo
from durable_async.testing import LocalRunner

pytestmark = pytest.mark.anyio


async def fetch(step: StepContext, key: str) -> str:
    return f"value of {key}"


async def sub(child: DurableContext, value: int) -> int:
    return await child.step(fetch_number, value)


async def fetch_number(step: StepContext, value: int) -> int:
    return value * 2


def plain_body(child: DurableContext) -> int:
    return 5


def plain_item(child: DurableContext, item: int, index: int, items: list[int]) -> None:
    return None


async def submit(callback_id: str, step: StepContext) -> None:
    return None


async def check(state: int, check_context: Any) -> int:
    return state + 1


@pytest.fixture
def coroutine_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Warnings raised while the test runs, a leftover coroutine's among them once collected."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
        gc.collect()  # a coroutine left unclosed warns "never awaited" when it is collected


def unchecked(value: object) -> Any:
    """``value`` hidden from mypy, which reports these misuses before they run."""
    return value


def never_awaited(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "never awaited" in str(w.message)]


# -- a coroutine or a value where an operation takes a function ------------------------

#: (call, exception, what the message must say) for each operation that takes a function.
MISUSES: list[tuple[Callable[[DurableContext], Any], type[Exception], list[str]]] = [
    (
        lambda ctx: ctx.step(unchecked(fetch(unchecked(None), "k"))),
        TypeError,
        [
            "ctx.step needs a function",
            "coroutine fetch(...)",
            "pass the function and its arguments, ctx.step(fetch, arg), not ctx.step(fetch(arg))",
        ],
    ),
    (lambda ctx: ctx.step(unchecked(5)), TypeError, ["ctx.step needs a function, got int"]),
    (
        lambda ctx: ctx.run_in_child_context(unchecked(sub(ctx, 3))),
        TypeError,
        ["ctx.run_in_child_context(sub, arg), not ctx.run_in_child_context(sub(ctx, arg))"],
    ),
    (
        lambda ctx: ctx.run_in_child_context(unchecked(None)),
        TypeError,
        ["ctx.run_in_child_context needs a function, got NoneType"],
    ),
    (
        lambda ctx: ctx.wait_for_callback(unchecked(submit("id", unchecked(None)))),
        TypeError,
        ["ctx.wait_for_callback(submit), not ctx.wait_for_callback(submit(...))"],
    ),
    (
        lambda ctx: ctx.map([1, 2], unchecked(None)),
        TypeError,
        ["ctx.map needs a function, got NoneType"],
    ),
    (
        lambda ctx: ctx.map([1, 2], unchecked(sub(ctx, 1))),
        TypeError,
        ["ctx.map(items, sub), not ctx.map(items, sub(...))"],
    ),
    (
        lambda ctx: ctx.parallel([unchecked(sub), unchecked(sub(ctx, 1)), unchecked(sub(ctx, 2))]),
        TypeError,
        ["ctx.parallel branch 1 needs a function", "ctx.parallel([sub, ...])"],
    ),
    (
        lambda ctx: ctx.parallel([ParallelBranch(sub), ParallelBranch(unchecked("sub"), name="b")]),
        TypeError,
        ["ctx.parallel branch 1 needs a function, got str"],
    ),
    (
        # Always a ValidationError here: kept so, as callers may catch it.
        lambda ctx: ctx.wait_for_condition(
            unchecked(check(0, None)),
            initial_state=0,
            strategy=WaitStrategyConfig(should_continue_polling=lambda s: s < 2),
        ),
        ValidationError,
        ["ctx.wait_for_condition(check, initial_state=...)"],
    ),
]


@pytest.mark.parametrize(("call", "error_type", "says"), MISUSES)
async def test_a_coroutine_or_value_instead_of_a_function_is_refused_at_the_call(
    call: Callable[[DurableContext], Any],
    error_type: type[Exception],
    says: list[str],
    coroutine_warnings: list[warnings.WarningMessage],
) -> None:
    refused: list[Exception] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        try:
            call(ctx)  # not awaited: the call itself must refuse
        except error_type as error:
            refused.append(error)
        return await ctx.step(fetch_number, 21, name="after")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED", result
    assert result.result == 42
    assert result.invocations == 1
    assert len(refused) == 1
    assert type(refused[0]) is error_type
    for text in says:
        assert text in str(refused[0])
    # Nothing was recorded for the refused call, and it took no ID: the next operation
    # has the first one.
    updates = sent_updates(runner.backend)
    assert {u.name for u in updates} == {"after"}
    assert updates[0].id == operation_id(None, 1)
    assert never_awaited(coroutine_warnings) == []


async def test_a_step_given_a_coroutine_fails_the_execution_at_once_without_retries() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(unchecked(fetch(unchecked(None), "k")))

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.invocations == 1  # not retried six times over a minute
    assert result.error is not None
    assert result.error.type == "TypeError"
    assert "ctx.step(fetch, arg), not ctx.step(fetch(arg))" in (result.error.message or "")
    assert [op.type.value for op in result.operations] == ["EXECUTION"]


async def test_an_operation_given_to_step_is_closed_not_reported_as_never_awaited(
    coroutine_warnings: list[warnings.WarningMessage],
) -> None:
    refused: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.step(unchecked(ctx.wait(seconds=5)))  # type: ignore[unused-coroutine]
        except TypeError as error:
            refused.append(str(error))
        return "went on"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result  # no UnawaitedOperationError for the wait
    assert len(refused) == 1
    # The SDK's own coroutine is not named as if it were the user's function.
    assert "run_wait" not in refused[0]
    assert "ctx.step(f, arg), not ctx.step(f(arg))" in refused[0]
    assert never_awaited(coroutine_warnings) == []


# -- a child context's body that returns something that cannot be awaited --------------


class _Observer(DurableInstrumentationPlugin):
    """A plugin with a body hook: children then run on the path that reports bodies."""

    def __init__(self) -> None:
        self.bodies = 0

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        self.bodies += 1


@pytest.mark.parametrize("with_plugin", [False, True], ids=["plain", "plugin"])
async def test_a_plain_child_body_fails_the_child_naming_the_function(with_plugin: bool) -> None:
    observer = _Observer()

    @durable_execution(plugins=[observer] if with_plugin else [])
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.run_in_child_context(unchecked(plain_body))
        except ChildContextError as error:
            cause = error.__cause__
            assert isinstance(cause, DurableOperationError)  # the inner error, as recorded
            assert cause.error_type == "TypeError"
            return error.message or ""
        return "no error"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result
    assert result.result == (
        "ctx.run_in_child_context needs an async function (or one returning an awaitable); "
        "plain_body returned int"
    )
    child = next(op for op in result.operations if op.type.value == "CONTEXT")
    assert child.status.value == "FAILED"  # recorded as the child's failure, as body errors are
    assert observer.bodies == (1 if with_plugin else 0)


@pytest.mark.parametrize("nesting", [NestingType.NESTED, NestingType.FLAT])
async def test_map_and_parallel_name_a_plain_function_that_returned_no_awaitable(
    nesting: NestingType,
) -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str | None]:
        mapped = await ctx.map([1], unchecked(plain_item), config=MapConfig(nesting=nesting))
        branched = await ctx.parallel(
            [unchecked(plain_body)], config=ParallelConfig(nesting=nesting)
        )
        return [item.error.message if item.error else None for item in (*mapped.all, *branched.all)]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result
    assert result.result == [
        "ctx.map needs an async function (or one returning an awaitable); plain_item returned None",
        "ctx.parallel needs an async function (or one returning an awaitable); "
        "plain_body returned int",
    ]


@pytest.mark.parametrize("with_plugin", [False, True], ids=["plain", "plugin"])
async def test_plain_callables_returning_an_awaitable_still_work(with_plugin: bool) -> None:
    @durable_execution(plugins=[_Observer()] if with_plugin else [])
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        child = await ctx.run_in_child_context(lambda c: sub(c, 1))
        mapped = await ctx.map([2, 3], lambda c, item, index, items: sub(c, item))
        branched = await ctx.parallel([lambda c: sub(c, 4)])
        return [child, *mapped.get_results(), *branched.get_results()]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result
    assert result.result == [2, 4, 6, 8]


# -- race, any and all_settled over something that is not an operation -----------------


@pytest.mark.parametrize(("combinator", "position"), [("race", 0), ("any", 1), ("all_settled", 1)])
async def test_a_race_over_a_non_operation_is_refused_at_the_call(
    combinator: str, position: int, coroutine_warnings: list[warnings.WarningMessage]
) -> None:
    refused: list[ValidationError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        operations: list[Any] = [ctx.wait(seconds=10), ctx.step(fetch, "k")]
        operations.insert(position, 5)
        try:
            getattr(ctx, combinator)(*operations)  # not awaited: the call itself refuses
        except ValidationError as error:
            refused.append(error)
        return "went on"

    runner = LocalRunner(handler)
    result = await runner.run()
    # Not UnawaitedOperationError blaming the handler for the operations the race refused.
    assert result.status == "SUCCEEDED", result
    assert len(refused) == 1
    message = str(refused[0])
    assert f"ctx.{combinator} needs operations" in message
    assert f"got int at position {position}" in message
    assert sent_updates(runner.backend) == []  # nothing ran, no race was recorded
    assert never_awaited(coroutine_warnings) == []


async def test_a_race_with_no_operations_is_refused_at_the_call_and_takes_no_id() -> None:
    refused: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        for combinator in (ctx.race, ctx.any, ctx.all_settled):
            try:
                combinator()  # type: ignore[unused-coroutine]  # the call itself refuses
            except ValidationError as error:
                refused.append(str(error))
        return await ctx.step(fetch_number, 1, name="after")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED", result
    assert refused == [
        "ctx.race needs at least one operation",
        "ctx.any needs at least one operation",
        "ctx.all_settled needs at least one operation",
    ]
    assert sent_updates(runner.backend)[0].id == operation_id(None, 1)


async def test_a_race_refused_for_its_name_closes_its_operations(
    coroutine_warnings: list[warnings.WarningMessage],
) -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.race(ctx.wait(seconds=10), name="tab\tname")  # type: ignore[unused-coroutine]
        except ValidationError:
            return "refused"
        return "accepted"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result  # the wait is not reported as never awaited
    assert result.result == "refused"
    assert never_awaited(coroutine_warnings) == []
