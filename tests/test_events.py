"""Invocation events: bad ones are rejected with a precise error; state pages are read in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import invoke_once, start

from durable_async import DurableContext, InvalidEventError, StepContext, durable_execution
from durable_async.testing import LocalRunner, MemoryBackend

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/x"


@durable_execution
async def noop(event: Any, ctx: DurableContext) -> str:
    return "ran"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, "got NoneType"),
        ("a string", "got str"),
        ([1, 2], "got list"),
        ({"CheckpointToken": "t"}, "no DurableExecutionArn"),
        ({"DurableExecutionArn": ARN}, "no CheckpointToken"),
        ({"orderId": 1}, "no DurableExecutionArn or CheckpointToken"),
        ({"DurableExecutionArn": 42, "CheckpointToken": "t"}, "non-empty strings"),
        ({"DurableExecutionArn": "", "CheckpointToken": "t"}, "non-empty strings"),
        ({"DurableExecutionArn": ARN, "CheckpointToken": None}, "non-empty strings"),
        (
            {"DurableExecutionArn": ARN, "CheckpointToken": "t", "InitialExecutionState": [1]},
            "InitialExecutionState must be an object",
        ),
        (
            {
                "DurableExecutionArn": ARN,
                "CheckpointToken": "t",
                "InitialExecutionState": {"Operations": {"Id": "x"}},
            },
            "Operations must be a list of objects",
        ),
        (
            {
                "DurableExecutionArn": ARN,
                "CheckpointToken": "t",
                "InitialExecutionState": {"Operations": ["op"]},
            },
            "Operations must be a list of objects",
        ),
        (
            {
                "DurableExecutionArn": ARN,
                "CheckpointToken": "t",
                "InitialExecutionState": {"Operations": [{"Id": "x", "Type": "STEP"}]},
            },
            "Operations is malformed",
        ),
        (
            {
                "DurableExecutionArn": ARN,
                "CheckpointToken": "t",
                "InitialExecutionState": {
                    "Operations": [{"Id": "x", "Type": "NOT_A_TYPE", "Status": "STARTED"}]
                },
            },
            "Operations is malformed",
        ),
        (
            {"DurableExecutionArn": ARN, "CheckpointToken": "t", "UpdatedOperationIds": "x"},
            "UpdatedOperationIds must be a list of operation IDs",
        ),
        (
            {"DurableExecutionArn": ARN, "CheckpointToken": "t", "UpdatedOperationIds": [""]},
            "UpdatedOperationIds must be a list of operation IDs",
        ),
    ],
)
async def test_bad_events_raise_invalid_event_error(event: Any, expected: str) -> None:
    with pytest.raises(InvalidEventError, match=expected):
        await noop.invoke_async(event, client=MemoryBackend())


@pytest.mark.anyio
async def test_bad_event_never_reaches_the_handler_or_backend() -> None:
    backend = MemoryBackend()
    ran: list[object] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        ran.append(event)

    with pytest.raises(InvalidEventError):
        await handler.invoke_async({"orderId": 7}, client=backend)
    assert ran == []
    assert backend.checkpoint_calls == []
    assert backend.state_calls == []


@pytest.mark.anyio
async def test_minimal_event_runs_with_empty_input() -> None:
    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        seen.append(event)
        return "ok"

    output = await handler.invoke_async(
        {"DurableExecutionArn": ARN, "CheckpointToken": "t"}, client=MemoryBackend()
    )
    assert output == {"Status": "SUCCEEDED", "Result": '"ok"'}
    assert seen == [{}]


@pytest.mark.anyio
async def test_execution_input_is_decoded() -> None:
    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        seen.append(event)

    result = await LocalRunner(handler).run({"order": {"id": 7, "items": [1, 2]}})
    assert result.status == "SUCCEEDED"
    assert seen == [{"order": {"id": 7, "items": [1, 2]}}]


@pytest.mark.anyio
async def test_non_json_input_fails_the_execution() -> None:
    backend = MemoryBackend()
    arn = backend.start_execution("{not json")
    output = await invoke_once(noop, backend, arn)
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.SerDesError"
    assert "not JSON" in output["Error"]["ErrorMessage"]


@pytest.mark.anyio
async def test_initial_state_is_paged_in_with_next_marker() -> None:
    """Twelve recorded steps across pages of two: all replay, none re-run."""
    backend = MemoryBackend(page_size=2)
    arn = start(backend, {"n": 12})
    runs: list[int] = []

    async def body(_: StepContext, i: int) -> int:
        runs.append(i)
        return i * i

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        squares = [await ctx.step(body, i) for i in range(event["n"])]
        await ctx.wait(seconds=5)
        return squares

    runner = LocalRunner(handler, backend)
    first = await invoke_once(handler, backend, arn)
    assert first == {"Status": "PENDING"}
    assert runs == list(range(12))
    backend.advance(5)

    event = runner.event(arn)
    assert len(event["InitialExecutionState"]["Operations"]) == 2
    assert event["InitialExecutionState"]["NextMarker"] == "2"
    calls_before = len(backend.checkpoint_calls)
    output = await handler.invoke_async(event, client=backend)
    assert output == {"Status": "SUCCEEDED", "Result": str([i * i for i in range(12)])}
    assert runs == list(range(12))  # nothing re-ran: every page was read
    assert len(backend.checkpoint_calls) == calls_before
    # 14 operations (execution + 12 steps + wait) in pages of 2: 6 more reads after the event.
    assert [r.marker for r in backend.state_calls] == ["2", "4", "6", "8", "10", "12"]


@pytest.mark.anyio
async def test_gathered_replay_across_pages() -> None:
    backend = MemoryBackend(page_size=3)
    runs: list[int] = []

    async def body(_: StepContext, i: int) -> int:
        runs.append(i)
        return i

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        values = await asyncio.gather(*(ctx.step(body, i) for i in range(10)))
        await ctx.wait(seconds=1)
        return sum(values)

    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED"
    assert result.result == 45
    assert sorted(runs) == list(range(10))
    assert backend.state_calls  # the second invocation had to page
