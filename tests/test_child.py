"""Child contexts: checkpointed results, nesting, failures, large results, serdes, logging."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from support import actions, invoke_once, sent_updates, start

from durable_async import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    DurableOperationError,
    RetryPresets,
    SerDesContext,
    SerDesError,
    StepConfig,
    StepContext,
    StepError,
    ValidationError,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._serdes import PAYLOAD_LIMIT_BYTES
from durable_async._wire.enums import (
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)
from durable_async.testing import LocalRunner, MemoryBackend


class Boom(Exception):
    pass


def context_updates(backend: MemoryBackend) -> list[Any]:
    return [u for u in sent_updates(backend) if u.type is OperationType.CONTEXT]


# -- success and replay ----------------------------------------------------------------


@pytest.mark.anyio
async def test_child_result_is_checkpointed_and_not_rerun_on_replay() -> None:
    runs: Counter[str] = Counter()
    seen: list[Any] = []

    async def double(step: StepContext, x: int) -> int:
        runs["step"] += 1
        return x * 2

    async def body(child: DurableContext, x: int) -> list[int]:
        runs["body"] += 1
        doubled = await child.step(double, x, name="double")
        return [x, doubled]

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        value = await ctx.run_in_child_context(body, 21, name="child")
        seen.append(value)
        await ctx.wait(seconds=1)
        return value

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == [21, 42]
    assert result.invocations == 2
    assert seen == [[21, 42], [21, 42]]
    assert runs == Counter({"body": 1, "step": 1})

    child_id = operation_id(None, 1)
    assert actions(runner.backend)[:4] == [
        ("CONTEXT", "START", "child"),
        ("STEP", "START", "double"),
        ("STEP", "SUCCEED", "double"),
        ("CONTEXT", "SUCCEED", "child"),
    ]
    start_update, succeed = context_updates(runner.backend)
    assert start_update.id == succeed.id == child_id
    assert succeed.sub_type == OperationSubType.RUN_IN_CHILD_CONTEXT
    assert succeed.payload == "[21,42]"
    assert succeed.context_options is not None
    assert not succeed.context_options.replay_children
    op = runner.backend.executions[result.arn].operations[child_id]
    assert op.status is OperationStatus.SUCCEEDED
    assert op.context_details is not None
    assert op.context_details.result == "[21,42]"
    step_op = runner.backend.executions[result.arn].operations[operation_id(child_id, 1)]
    assert step_op.parent_id == child_id


@pytest.mark.anyio
async def test_child_returning_none_replays_none() -> None:
    seen: list[Any] = []
    runs: list[int] = []

    async def body(child: DurableContext) -> None:
        runs.append(1)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        seen.append(await ctx.run_in_child_context(body))
        await ctx.wait(seconds=1)
        return "ok"

    result = await LocalRunner(handler).run()
    assert result.result == "ok"
    assert seen == [None, None]
    assert runs == [1]


@pytest.mark.anyio
async def test_unfinished_child_reruns_its_body_and_replays_inner_operations() -> None:
    runs: Counter[str] = Counter()

    async def body(child: DurableContext) -> str:
        runs["body"] += 1
        first = await child.step(lambda _: runs.update(["step"]) or "a", name="first")
        await child.wait(seconds=5)
        return first + "b"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.run_in_child_context(body, name="child")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "ab"
    assert result.invocations == 2
    assert runs == Counter({"body": 2, "step": 1})
    # START once, SUCCEED once: the re-run body does not start the child again.
    assert [u.action for u in context_updates(runner.backend)] == [
        OperationAction.START,
        OperationAction.SUCCEED,
    ]


@pytest.mark.anyio
async def test_nested_children_get_ids_under_their_parent() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    async def inner(child: DurableContext) -> int:
        return await child.step(lambda _: 7, name="leaf")

    async def outer(child: DurableContext) -> int:
        before = await child.step(lambda _: 1, name="before")
        value = await child.run_in_child_context(inner, name="inner")
        return before + value

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        await ctx.step(lambda _: 0, name="root step")
        return await ctx.run_in_child_context(outer, name="outer")

    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": "8"}
    ops = backend.executions[arn].operations
    outer_id = operation_id(None, 2)
    inner_id = operation_id(outer_id, 2)
    leaf_id = operation_id(inner_id, 1)
    assert ops[operation_id(None, 1)].parent_id is None
    assert ops[outer_id].name == "outer"
    assert ops[outer_id].parent_id is None
    assert ops[operation_id(outer_id, 1)].name == "before"
    assert ops[operation_id(outer_id, 1)].parent_id == outer_id
    assert ops[inner_id].type is OperationType.CONTEXT
    assert ops[inner_id].name == "inner"
    assert ops[inner_id].parent_id == outer_id
    assert ops[leaf_id].name == "leaf"
    assert ops[leaf_id].parent_id == inner_id
    inner_updates = [u for u in context_updates(backend) if u.id == inner_id]
    assert [u.parent_id for u in inner_updates] == [outer_id, outer_id]
    inner_details = ops[inner_id].context_details
    outer_details = ops[outer_id].context_details
    assert inner_details is not None
    assert inner_details.result == "7"
    assert outer_details is not None
    assert outer_details.result == "8"


# -- failures --------------------------------------------------------------------------


def describe(error: ChildContextError) -> tuple[Any, ...]:
    cause = error.__cause__
    assert isinstance(cause, DurableOperationError)
    return (
        type(error),
        str(error),
        error.error_type,
        error.message,
        type(cause),
        cause.error_type,
        cause.message,
    )


@pytest.mark.anyio
async def test_failing_child_raises_child_context_error_identically_on_replay() -> None:
    runs: list[int] = []
    seen: list[tuple[Any, ...]] = []

    async def body(child: DurableContext) -> None:
        runs.append(1)
        raise Boom("exploded")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.run_in_child_context(body, name="child")
        except ChildContextError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "handled"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "handled"
    assert runs == [1]
    expected = (
        ChildContextError,
        f"{__name__}.Boom: exploded",
        f"{__name__}.Boom",
        "exploded",
        DurableOperationError,
        f"{__name__}.Boom",
        "exploded",
    )
    assert seen == [expected, expected]
    fail = context_updates(runner.backend)[-1]
    assert fail.action is OperationAction.FAIL
    assert fail.error is not None
    assert (fail.error.type, fail.error.message) == (f"{__name__}.Boom", "exploded")
    op = runner.backend.executions[result.arn].operations[operation_id(None, 1)]
    assert op.status is OperationStatus.FAILED


@pytest.mark.anyio
async def test_failed_inner_step_is_rebuilt_as_step_error_cause() -> None:
    seen: list[tuple[Any, ...]] = []

    def failing(_: StepContext) -> None:
        raise Boom("step broke")

    async def body(child: DurableContext) -> None:
        await child.step(
            failing, name="inner", config=StepConfig(retry_strategy=RetryPresets.none())
        )

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.run_in_child_context(body, name="child")
        except ChildContextError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "handled"

    result = await LocalRunner(handler).run()
    assert result.result == "handled"
    expected = (
        ChildContextError,
        "aws_durable_execution_sdk_python.exceptions.StepError: step broke",
        "aws_durable_execution_sdk_python.exceptions.StepError",
        "step broke",
        StepError,
        "aws_durable_execution_sdk_python.exceptions.StepError",
        "step broke",
    )
    assert seen == [expected, expected]


@pytest.mark.anyio
async def test_unhandled_child_failure_fails_the_execution() -> None:
    async def body(child: DurableContext) -> None:
        raise Boom("bad")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.run_in_child_context(body)

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.ChildContextError"
    assert result.error.message == "bad"


# -- results too large to store ----------------------------------------------------------


PART = 100 * 1024  # three parts make a result over the 256 KiB limit


def large_result_handler(runs: Counter[str], seen: list[str], config: ChildConfig) -> Any:
    def part(_: StepContext, index: int) -> str:
        runs[f"part{index}"] += 1
        return str(index) * PART

    async def body(child: DurableContext) -> str:
        runs["body"] += 1
        parts = [await child.step(part, i, name=f"part{i}") for i in range(3)]
        return "".join(parts)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        value = await ctx.run_in_child_context(body, name="big", config=config)
        seen.append(value)
        await ctx.wait(seconds=1)
        return len(value)

    return handler


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("config", "stored"),
    [
        (ChildConfig(), ""),
        (ChildConfig(summary_generator=lambda r: json.dumps({"length": len(r)})), None),
    ],
)
async def test_result_over_the_limit_replays_children(config: ChildConfig, stored: Any) -> None:
    runs: Counter[str] = Counter()
    seen: list[str] = []
    runner = LocalRunner(large_result_handler(runs, seen, config))
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == 3 * PART
    assert 3 * PART + 2 > PAYLOAD_LIMIT_BYTES
    # The body re-ran on replay and rebuilt the same result from its steps' checkpoints.
    assert runs == Counter({"body": 2, "part0": 1, "part1": 1, "part2": 1})
    assert len(seen) == 2
    assert seen[0] == seen[1] == "0" * PART + "1" * PART + "2" * PART

    succeed = context_updates(runner.backend)[-1]
    assert succeed.action is OperationAction.SUCCEED
    assert succeed.context_options is not None
    assert succeed.context_options.replay_children is True
    expected = stored if stored is not None else json.dumps({"length": 3 * PART})
    assert succeed.payload == expected
    # No second SUCCEED: the replay rebuilt the value without checkpointing it again.
    assert [u.action for u in context_updates(runner.backend)] == [
        OperationAction.START,
        OperationAction.SUCCEED,
    ]
    op = runner.backend.executions[result.arn].operations[operation_id(None, 1)]
    assert op.context_details is not None
    assert op.context_details.replay_children is True


@pytest.mark.anyio
async def test_result_at_the_limit_is_stored() -> None:
    async def body(child: DurableContext) -> str:
        return "x" * (PAYLOAD_LIMIT_BYTES - 2)  # plus two quotes of JSON: exactly the limit

    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return len(await ctx.run_in_child_context(body))

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "SUCCEEDED"
    succeed = context_updates(backend)[-1]
    assert succeed.context_options is not None
    assert succeed.context_options.replay_children is False
    assert succeed.payload is not None
    assert len(succeed.payload.encode()) == PAYLOAD_LIMIT_BYTES


# -- serdes ----------------------------------------------------------------------------


class PrefixSerDes:
    """Stores ``v1:`` + JSON; decodes lists back as tuples."""

    def __init__(self) -> None:
        self.contexts: list[SerDesContext] = []

    def serialize(self, value: Any, context: SerDesContext) -> str:
        self.contexts.append(context)
        return "v1:" + json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        assert data.startswith("v1:")
        return tuple(json.loads(data[3:]))


class AsyncPrefixSerDes(PrefixSerDes):
    async def serialize(self, value: Any, context: SerDesContext) -> str:  # type: ignore[override]
        return super().serialize(value, context)

    async def deserialize(self, data: str, context: SerDesContext) -> Any:
        return super().deserialize(data, context)


@pytest.mark.anyio
@pytest.mark.parametrize("serdes_class", [PrefixSerDes, AsyncPrefixSerDes])
async def test_custom_serdes_stores_and_replays_child_results(serdes_class: type) -> None:
    serdes = serdes_class()
    seen: list[Any] = []
    runs: list[int] = []

    async def body(child: DurableContext) -> list[int]:
        runs.append(1)
        return [1, 2, 3]

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        seen.append(await ctx.run_in_child_context(body, config=ChildConfig(serdes=serdes)))
        await ctx.wait(seconds=1)
        return "ok"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "ok"
    assert runs == [1]
    # The first run returns what replay returns: the deserialized copy.
    assert seen == [(1, 2, 3), (1, 2, 3)]
    succeed = context_updates(runner.backend)[-1]
    assert succeed.payload == "v1:[1, 2, 3]"
    assert serdes.contexts[0] == SerDesContext(operation_id(None, 1), result.arn)


# -- logging and names -------------------------------------------------------------------


@pytest.mark.anyio
async def test_child_logger_is_silent_on_replay_unless_asked(sdk_logger: Any) -> None:
    logger, records = sdk_logger

    async def body(child: DurableContext) -> None:
        child.logger.info("before wait")
        child.logger.with_replay_logging().info("always")
        await child.wait(seconds=5)
        child.logger.info("after wait")

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.run_in_child_context(body, name="child")

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert result.invocations == 2
    messages = Counter(r.getMessage() for r in records.records)
    assert messages == Counter({"before wait": 1, "always": 2, "after wait": 1})
    for record in records.records:
        assert record.parentId == operation_id(None, 1)
        assert record.executionArn == result.arn


async def named_body(child: DurableContext) -> str:
    return "named"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "func", "expected"),
    [
        ({}, named_body, "named_body"),
        ({"name": ""}, named_body, None),
        ({"name": "custom"}, named_body, "custom"),
        ({}, lambda child: named_body(child), None),
    ],
)
async def test_child_names(kwargs: dict[str, Any], func: Any, expected: str | None) -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.run_in_child_context(func, **kwargs)

    assert await invoke_once(handler, backend, arn) == {
        "Status": "SUCCEEDED",
        "Result": '"named"',
    }
    assert [u.name for u in context_updates(backend)] == [expected, expected]
    assert backend.executions[arn].operations[operation_id(None, 1)].name == expected


@pytest.mark.anyio
async def test_child_sub_type_from_config() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.run_in_child_context(named_body, config=ChildConfig(sub_type="Custom"))

    await invoke_once(handler, backend, arn)
    assert {u.sub_type for u in context_updates(backend)} == {"Custom"}


def test_invalid_child_sub_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ChildConfig(sub_type="not a subtype!")


@pytest.mark.anyio
async def test_child_whose_result_cannot_be_serialized_is_checkpointed_failed() -> None:
    """The CONTEXT was left STARTED when its result failed to serialize; it must be
    closed with a FAIL, so replay raises the same error without rerunning the body."""
    runs: Counter[str] = Counter()
    caught: list[type[BaseException]] = []

    async def one(step: StepContext) -> int:
        return 1

    async def body(child: DurableContext) -> set[int]:
        runs["body"] += 1
        await child.step(one, name="one")
        return {1, 2}  # not storable by the default serdes

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.run_in_child_context(body, name="child")
        except SerDesError as exc:
            caught.append(type(exc))
        await ctx.wait(seconds=1)
        return "handled"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert caught == [SerDesError, SerDesError]  # same error on first run and replay
    context_actions = [
        u.action for u in sent_updates(runner.backend) if u.type is OperationType.CONTEXT
    ]
    assert context_actions == [OperationAction.START, OperationAction.FAIL]
    assert runs["body"] == 1
