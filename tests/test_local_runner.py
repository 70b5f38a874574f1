"""The local runner drives executions to their end on one clock, however many share a backend."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable_async import (
    CallbackConfig,
    CallbackFailedError,
    DurableContext,
    JitterStrategy,
    JsonSerDes,
    OperationStatus,
    OperationType,
    RetryStrategyConfig,
    SerDesContext,
    SerDesError,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)
from durable_async.testing import (
    History,
    HistoryFormatError,
    InvocationStatus,
    LocalRunner,
    MemoryBackend,
    VirtualClock,
)


@durable_execution
async def waits_twice(event: Any, ctx: DurableContext) -> str:
    await ctx.wait(seconds=10, name="first")
    await ctx.wait(seconds=10, name="second")
    return f"{event} done"


@pytest.mark.anyio
async def test_runners_sharing_a_backend_each_run_to_completion() -> None:
    backend = MemoryBackend()
    runners = [LocalRunner(waits_twice, backend) for _ in range(3)]
    results = await asyncio.gather(*(r.run(f"run-{i}") for i, r in enumerate(runners)))
    assert [r.status for r in results] == [InvocationStatus.SUCCEEDED] * 3
    assert [r.result for r in results] == ["run-0 done", "run-1 done", "run-2 done"]


@pytest.mark.anyio
async def test_a_runner_finishes_after_another_runner_fired_its_timers() -> None:
    backend = MemoryBackend()
    first, second = LocalRunner(waits_twice, backend), LocalRunner(waits_twice, backend)
    parked = await second.run_until_suspension("second")
    assert parked.status is InvocationStatus.PENDING
    assert (await first.run("first")).status is InvocationStatus.SUCCEEDED  # fires both
    resumed = await second.resume(parked.arn)
    assert resumed.status is InvocationStatus.SUCCEEDED
    assert resumed.result == "second done"


@durable_execution
async def reads_the_time(event: Any, ctx: DurableContext) -> list[str]:
    before = await ctx.now()
    await ctx.wait(hours=1)
    after = await ctx.now()
    return [before.isoformat(), after.isoformat()]


@pytest.mark.anyio
async def test_ctx_now_reads_the_injected_clock_that_timers_use() -> None:
    clock = VirtualClock()
    start = clock.now()
    result = await LocalRunner(reads_the_time, MemoryBackend(clock=clock)).run()
    assert result.result == [start.isoformat(), (start + timedelta(hours=1)).isoformat()]
    assert clock.now() == start + timedelta(hours=1)


def test_a_naive_start_time_is_rejected() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2026, 1, 1))


@pytest.mark.anyio
async def test_the_execution_operation_ends_with_the_execution() -> None:
    @durable_execution
    async def fails(event: Any, ctx: DurableContext) -> None:
        raise RuntimeError("boom")

    ok = await LocalRunner(waits_twice).run("x")
    failed = await LocalRunner(fails).run()
    assert ok.history.execution is not None
    assert ok.history.execution.status == "SUCCEEDED"
    assert failed.history.execution is not None
    assert failed.history.execution.status == "FAILED"


_attempts: dict[str, int] = {}
_RETRY_AFTER_4S = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(initial_delay=4, jitter_strategy=JitterStrategy.NONE)
    )
)


@durable_execution
async def charges_then_batches(event: Any, ctx: DurableContext) -> list[Any]:
    def flaky(step: StepContext) -> str:
        _attempts[event] = _attempts.get(event, 0) + 1
        if _attempts[event] < 2:
            raise RuntimeError("card service down")
        return "charged"

    charged = await ctx.step(flaky, name="charge", config=_RETRY_AFTER_4S)
    await ctx.wait(seconds=30, name="cool-off")

    async def batch(child: DurableContext) -> int:
        await child.step(lambda _: 1, name="item-0")
        await child.step(lambda _: 2, name="item-1")
        return 2

    return [charged, await ctx.run_in_child_context(batch, name="batch")]


@pytest.mark.anyio
async def test_history_finds_operations_by_name_index_and_id(anyio_backend: Any) -> None:
    result = await LocalRunner(charges_then_batches).run(f"lookups-{anyio_backend}")
    history = result.history
    charge = history.get("charge")
    assert charge.type is OperationType.STEP
    assert charge.status is OperationStatus.SUCCEEDED
    assert charge.attempts == 2
    assert charge.result == "charged"
    assert history[0] is charge
    assert history.by_id(charge.id) is charge
    assert [c.name for c in history.children("batch")] == ["item-0", "item-1"]
    assert [n.name for n in history] == ["charge", "cool-off", "batch", "item-0", "item-1"]
    assert history.get("cool-off").duration == timedelta(seconds=30)
    with pytest.raises(KeyError, match=r"no operation named 'missing'.*charge"):
        history.get("missing")
    with pytest.raises(KeyError, match="no operation with id"):
        history.by_id("nope")


@pytest.mark.anyio
async def test_history_records_where_each_invocation_suspended_and_resumed(
    anyio_backend: Any,
) -> None:
    result = await LocalRunner(charges_then_batches).run(f"invocations-{anyio_backend}")
    charge, wait = result.history.get("charge"), result.history.get("cool-off")
    records = result.history.invocations
    assert [r.status for r in records] == [
        InvocationStatus.PENDING,
        InvocationStatus.PENDING,
        InvocationStatus.SUCCEEDED,
    ]
    assert [r.suspended_on for r in records] == [(charge.id,), (wait.id,), ()]
    assert [r.resumed_by for r in records] == [(), (charge.id,), (wait.id,)]
    assert records[2].started - records[0].started == timedelta(seconds=34)


@pytest.mark.anyio
async def test_the_history_prints_as_an_indented_tree(anyio_backend: Any) -> None:
    result = await LocalRunner(charges_then_batches).run(f"tree-{anyio_backend}")
    assert str(result.history).splitlines() == [
        "EXECUTION  SUCCEEDED  +0s  took 34s",
        "├─ STEP charge  SUCCEEDED  attempts=2  +0s  took 4s",
        "├─ WAIT cool-off  SUCCEEDED  +4s  took 30s",
        "└─ CONTEXT/RunInChildContext batch  SUCCEEDED  +34s  took 0s",
        "   ├─ STEP item-0  SUCCEEDED  attempts=1  +34s  took 0s",
        "   └─ STEP item-1  SUCCEEDED  attempts=1  +34s  took 0s",
        "invocations:",
        "  #1 at +0s ended PENDING, suspended on STEP charge",
        "  #2 at +4s resumed by STEP charge; ended PENDING, suspended on WAIT cool-off",
        "  #3 at +34s resumed by WAIT cool-off; ended SUCCEEDED",
    ]


@pytest.mark.anyio
async def test_a_saved_history_reads_back_the_same() -> None:
    result = await LocalRunner(charges_then_batches).run("json")
    saved = json.loads(json.dumps(result.history.to_json()))
    assert saved["Operations"][0]["Type"] == "EXECUTION"
    again = History.from_json(saved)
    assert str(again) == str(result.history)
    assert again.arn == result.arn


_WHEN = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@durable_execution
async def records_typed_results(event: Any, ctx: DurableContext) -> str:
    def charge(step: StepContext, order: dict[str, Any]) -> dict[str, bool]:
        if step.attempt < 2:
            raise RuntimeError("card service down")
        return {"paid": True}

    async def shipment(child: DurableContext) -> dict[str, Any]:
        return {"by": "courier", "days": [1, 2]}

    await ctx.step(charge, {"total": 42}, name="charge", config=_RETRY_AFTER_4S)
    await ctx.step(lambda _: _WHEN, name="when")
    await ctx.step(lambda _: (1, "a"), name="pair")
    await ctx.step(lambda _: [1, 2], name="plain")
    await ctx.run_in_child_context(shipment, name="ship")
    return "ok"


@pytest.mark.anyio
async def test_history_results_are_decoded_with_the_default_serdes() -> None:
    result = await LocalRunner(records_typed_results).run({"order_id": "o-1"})
    charge = result.history.get("charge")  # the README's example
    assert charge.attempts == 2
    assert charge.result == {"paid": True}
    assert charge.raw_result == '{"t":"m","v":{"paid":{"t":"b","v":true}}}'
    assert result.history.get("when").result == _WHEN
    pair = result.history.get("pair").result
    assert pair == (1, "a")
    assert isinstance(pair, tuple)
    assert result.history.get("plain").result == [1, 2]
    assert result.history.get("ship").result == {"by": "courier", "days": [1, 2]}
    again = History.from_json(json.loads(json.dumps(result.history.to_json())))
    assert [n.result for n in again] == [n.result for n in result.history]


def test_a_history_written_by_aws_sdk_reads_the_same() -> None:
    def step(op_id: str, payload: str) -> dict[str, Any]:
        details = {"Attempt": 1, "Result": payload}
        return {"Id": op_id, "Type": "STEP", "Status": "SUCCEEDED", "StepDetails": details}

    history = History.from_json(
        [
            step("a", '{"t": "m", "v": {"paid": {"t": "b", "v": true}}}'),
            step("b", '{"t": "dt", "v": "2026-03-01T12:30:00Z"}'),
            step("c", "[1, 2]"),
            step("d", '"text"'),
        ]
    )
    assert [n.result for n in history] == [{"paid": True}, _WHEN, [1, 2], "text"]


def test_the_result_of_a_context_too_large_to_store_is_not_mistaken_for_its_summary() -> None:
    summary = '{"type": "MapResult", "totalCount": 2}'
    details = {"ReplayChildren": True, "Result": summary}
    op = {"Id": "m", "Type": "CONTEXT", "Status": "SUCCEEDED", "ContextDetails": details}
    (node,) = History.from_json([op])
    with pytest.raises(SerDesError, match="too large to store"):
        _ = node.result
    assert node.raw_result == summary


@pytest.mark.anyio
async def test_callback_and_invoke_results_read_as_the_handler_gets_them() -> None:
    @durable_execution
    async def target(event: int, ctx: DurableContext) -> dict[str, int]:
        return {"doubled": event * 2}

    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approve")
        answer = await callback.result()
        return [answer, await ctx.invoke("double", 21, name="double-it")]

    runner = LocalRunner(caller, functions={"double": target})
    parked = await runner.run_until_suspension()
    runner.complete_callback(parked.open_callbacks[0], {"ok": True})
    result = await runner.resume(parked.arn)
    assert result.result == ['{"ok": true}', {"doubled": 42}]
    assert result.history.get("approve").result == '{"ok": true}'  # no serdes: the raw answer
    assert result.history.get("double-it").result == {"doubled": 42}  # plain JSON


@pytest.mark.anyio
async def test_a_result_stored_with_a_custom_serdes_points_to_the_raw_payload() -> None:
    @durable_execution
    async def custom(event: Any, ctx: DurableContext) -> None:
        await ctx.step(
            lambda _: {"paid": True}, name="charge", config=StepConfig(serdes=JsonSerDes())
        )

    charge = (await LocalRunner(custom).run()).history.get("charge")
    with pytest.raises(SerDesError, match=r"STEP charge .*decode raw_result with that serdes"):
        _ = charge.result
    assert JsonSerDes[Any]().deserialize(charge.raw_result or "", SerDesContext()) == {"paid": True}


def test_a_history_file_of_another_shape_is_rejected_with_the_shapes_it_takes() -> None:
    with pytest.raises(HistoryFormatError, match=r"'Operations' list .* 'Events' list"):
        History.from_json({"Items": []})


@pytest.mark.parametrize(
    "data",
    [
        {"Operations": [{"Id": "x"}]},
        {"Operations": "not a list"},
        {"Events": [{"EventType": "StepStarted"}]},
        {"Events": [{"EventType": "StepSucceeded", "Id": "s", "StepSucceededDetails": 3}]},
        "a string",
    ],
)
def test_a_malformed_history_is_a_history_format_error(data: Any) -> None:
    with pytest.raises(HistoryFormatError):
        History.from_json(data)


@durable_execution
async def asks_twice(event: Any, ctx: DurableContext) -> list[Any]:
    answers = []
    for name in ("approve", "sign"):
        callback = await ctx.create_callback(
            name=name,
            config=CallbackConfig(timeout=3600, heartbeat_timeout=60, serdes=JsonSerDes()),
        )
        try:
            answers.append(await callback.result())
        except CallbackFailedError as error:
            answers.append(f"failed: {error}")
    return answers


@pytest.mark.anyio
async def test_callbacks_are_answered_through_the_runner() -> None:
    runner = LocalRunner(asks_twice)
    first = await runner.run_until_suspension()
    assert first.status is InvocationStatus.PENDING
    assert first.open_callbacks == (first.history.get("approve").callback_id,)
    runner.heartbeat_callback(first.open_callbacks[0])
    runner.complete_callback(first.open_callbacks[0], {"ok": True})
    second = await runner.resume(first.arn, skip_time=False)
    assert second.status is InvocationStatus.PENDING
    runner.fail_callback(second.open_callbacks[0], "no signature", error_type="Rejected")
    final = await runner.resume(first.arn)
    assert final.status is InvocationStatus.SUCCEEDED
    assert final.result[0] == {"ok": True}
    assert "no signature" in final.result[1]
    assert final.history.get("sign").error is not None


@pytest.mark.anyio
async def test_run_until_suspension_does_not_move_the_clock() -> None:
    runner = LocalRunner(waits_twice)
    began = runner.clock.now()
    result = await runner.run_until_suspension("x")
    assert result.status is InvocationStatus.PENDING
    assert runner.clock.now() == began
    assert result.history.get("first").status is OperationStatus.STARTED


@durable_execution
async def waits_once(event: Any, ctx: DurableContext) -> str:
    await ctx.wait(seconds=30, name="w1")
    return "done"


@pytest.mark.anyio
async def test_resume_with_nothing_due_does_not_invoke_the_handler() -> None:
    runner = LocalRunner(waits_once)
    began = runner.clock.now()
    first = await runner.run_until_suspension({})
    for _ in range(2):
        idle = await runner.resume(first.arn, skip_time=False)
        assert idle.status is InvocationStatus.PENDING
        assert (idle.invocations, idle.outputs, idle.result) == (0, (), None)
        assert idle.history.get("w1").status is OperationStatus.STARTED
        assert len(idle.history.invocations) == 1
    assert runner.clock.now() == began

    final = await runner.resume(first.arn)  # skips to the wait's end and invokes once
    assert (final.status, final.result, final.invocations) == ("SUCCEEDED", "done", 1)
    assert str(final.history).splitlines()[-3:] == [
        "invocations:",
        "  #1 at +0s ended PENDING, suspended on WAIT w1",
        "  #2 at +30s resumed by WAIT w1; ended SUCCEEDED",
    ]

    ended = await runner.resume(first.arn)  # an ended execution is not invoked again
    assert (ended.status, ended.result, ended.invocations) == ("SUCCEEDED", "done", 0)
    assert len(ended.history.invocations) == 2


@pytest.mark.anyio
async def test_resume_invokes_a_handler_waiting_on_a_callback_only_once_it_is_answered() -> None:
    @durable_execution
    async def asks(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="ask", serdes=JsonSerDes())
        return await callback.result()

    runner = LocalRunner(asks)
    first = await runner.run()  # no timeout: nothing the runner can move
    idle = await runner.resume(first.arn)
    assert (idle.status, idle.invocations) == (InvocationStatus.PENDING, 0)
    assert idle.open_callbacks == first.open_callbacks
    runner.complete_callback(first.open_callbacks[0], {"ok": True})
    final = await runner.resume(first.arn)
    assert (final.status, final.result, final.invocations) == ("SUCCEEDED", {"ok": True}, 1)
    ask = final.history.get("ask")
    assert [r.resumed_by for r in final.history.invocations] == [(), (ask.id,)]


@pytest.mark.anyio
async def test_registered_targets_answer_chained_invokes() -> None:
    @durable_execution
    async def double(event: int, ctx: DurableContext) -> int:
        return event * 2

    @durable_execution
    async def caller(event: Any, ctx: DurableContext) -> Any:
        return await ctx.invoke("double", 21, name="double-it")

    runner = LocalRunner(caller)
    runner.register("double", double)
    result = await runner.run()
    assert result.result == 42
    assert result.history.get("double-it").type is OperationType.CHAINED_INVOKE


def test_a_runner_refuses_a_second_clock() -> None:
    with pytest.raises(ValueError, match="one clock"):
        LocalRunner(waits_twice, MemoryBackend(), clock=VirtualClock())
