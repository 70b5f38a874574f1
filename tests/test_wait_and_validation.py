"""ctx.wait durations and argument validation, checked before anything is sent."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from typing import Any

import pytest
from support import invoke_once, sent_updates, start

from durable_async import (
    DurableContext,
    Duration,
    StepConfig,
    StepError,
    ValidationError,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async.testing import LocalRunner, MemoryBackend


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "seconds"),
    [
        (lambda ctx: ctx.wait(5), 5),
        (lambda ctx: ctx.wait(1.2), 2),  # fractions round up
        (lambda ctx: ctx.wait(timedelta(minutes=1, seconds=30)), 90),
        (lambda ctx: ctx.wait(Duration.from_hours(2)), 7200),
        (lambda ctx: ctx.wait(minutes=2, seconds=3), 123),
        (lambda ctx: ctx.wait(days=1, hours=1), 90000),
    ],
)
async def test_wait_durations_are_sent_in_whole_seconds(call: Any, seconds: int) -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        await call(ctx)
        return "woke"

    runner = LocalRunner(handler)
    before = runner.backend.now
    result = await runner.run()
    assert result.result == "woke"
    assert result.invocations == 2
    (update,) = sent_updates(runner.backend)
    assert update.wait_options is not None
    assert update.wait_options.wait_seconds == seconds
    assert runner.backend.now - before == timedelta(seconds=seconds)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ctx: ctx.wait(0.5), "at least 1 second"),
        (lambda ctx: ctx.wait(), "at least 1 second"),
        (lambda ctx: ctx.wait(seconds=0), "at least 1 second"),
        (lambda ctx: ctx.wait(timedelta(milliseconds=10)), "at least 1 second"),
        (lambda ctx: ctx.wait(5, seconds=5), "not both"),
        (lambda ctx: ctx.wait(-3), "negative"),
        (lambda ctx: ctx.wait("5"), "expected a Duration"),
        (lambda ctx: ctx.wait(seconds=5, name="x" * 257), "invalid operation name"),
        (lambda ctx: ctx.wait(seconds=5, name="tab\tname"), "invalid operation name"),
        (lambda ctx: ctx.step(lambda _: 1, name="\x7f"), "invalid operation name"),
        (lambda ctx: ctx.step(lambda _: 1, name="naïve"), "invalid operation name"),
    ],
)
async def test_invalid_arguments_raise_validation_error(call: Any, match: str) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    caught: list[ValidationError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            call(ctx)
        except ValidationError as exc:
            caught.append(exc)
        return "checked"

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"checked"'}
    assert len(caught) == 1
    assert match in str(caught[0])
    assert backend.checkpoint_calls == []


@pytest.mark.anyio
async def test_rejected_call_does_not_consume_an_operation_id() -> None:
    """A call that fails validation allocates no ID, so later IDs stay stable."""

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        with contextlib.suppress(ValidationError):
            await ctx.wait(0)
        return await ctx.step(lambda _: 1, name="after")

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 1
    (update, *_) = sent_updates(runner.backend)
    assert update.id == operation_id(None, 1)


@pytest.mark.parametrize("sub_type", ["", "has space", "x" * 33])
def test_step_config_rejects_bad_sub_types(sub_type: str) -> None:
    with pytest.raises(ValidationError, match="invalid subtype"):
        StepConfig(sub_type=sub_type)


@pytest.mark.anyio
async def test_custom_sub_type_is_sent_and_checked_on_replay() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        value = await ctx.step(lambda _: 3, name="s", config=StepConfig(sub_type="Custom_1"))
        await ctx.wait(seconds=1)
        return value

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == 3
    assert {u.sub_type for u in sent_updates(runner.backend) if u.name == "s"} == {"Custom_1"}


def test_duration_rounds_up_and_rejects_negatives() -> None:
    assert Duration.of(minutes=1, seconds=0.1).seconds == 61
    assert Duration.coerce(timedelta(seconds=2.5)).seconds == 3
    with pytest.raises(ValidationError):
        Duration(-1)
    with pytest.raises(ValidationError):
        Duration.coerce(True)


@pytest.mark.anyio
async def test_empty_name_records_no_name_instead_of_the_function_name() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    async def named_function(step: Any) -> int:
        return 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        await ctx.step(named_function)
        return await ctx.step(named_function, name="")

    await invoke_once(handler, backend, arn)
    names = [u.name for call in backend.checkpoint_calls for u in call.updates]
    assert names == ["named_function", "named_function", None, None]


@pytest.mark.anyio
@pytest.mark.parametrize("plain", [False, True], ids=["async-body", "plain-body"])
async def test_an_operation_inside_a_step_body_fails_the_step_at_once(plain: bool) -> None:
    """A step's result is all replay knows of it, so operations cannot nest inside one.

    The mistake fails the step on its first attempt, without retries or backoff, even when
    the body catches the refusal; the step's error carries the refusal's message.
    """
    backend = MemoryBackend()
    arn = start(backend)
    refused: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        async def async_body(step: Any) -> str:
            try:
                await ctx.step(lambda _: 1)
            except ValidationError as error:
                refused.append(str(error))
            return "async ok"

        def sync_body(step: Any) -> str:
            try:
                ctx.wait(seconds=5).close()
            except ValidationError as error:
                refused.append(str(error))
            return "sync ok"

        try:
            return await ctx.step(sync_body if plain else async_body)
        except StepError as error:
            return f"failed: {error.message}"

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "SUCCEEDED"
    name = "sync_body" if plain else "async_body"
    assert len(refused) == 1
    assert f"'{name}'" in refused[0]
    assert json.loads(output["Result"]) == f"failed: {refused[0]}"
    # One attempt, no RETRY: START then FAIL of the body's step, nothing nested recorded.
    assert [(u.action.value, u.name) for u in sent_updates(backend)] == [
        ("START", name),
        ("FAIL", name),
    ]
