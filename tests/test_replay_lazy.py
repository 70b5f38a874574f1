"""Replay decodes recorded operations lazily, and nothing it used to check goes unchecked.

The event's operations stay service dicts until replay reads them, and a step recorded as
succeeded returns its result straight from its dict. These tests hold the lines that must
not move: a malformed event is still refused before anything runs, whatever waits to be
decoded decodes, and what replay reports (values, mismatches, forgotten awaits, the state
view) is what it was.
"""

from __future__ import annotations

import gc
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durable_async import (
    DurableContext,
    InvalidEventError,
    SerDesError,
    StepContext,
    _identity,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._replay import OperationLog
from durable_async._wire.converter import (
    decodes_cleanly,
    execution_decodes_cleanly,
    operation_from_wire,
)
from durable_async._wire.models import Operation
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend

ARN = "arn:aws:lambda:us-west-2:123456789012:function:f:$LATEST/durable-execution/e/1"
EXECUTION_OP = {"Id": "exec", "Type": "EXECUTION", "Status": "STARTED", "ExecutionDetails": {}}
FIRST = operation_id(None, 1)


def recorded_step(**overrides: Any) -> dict[str, Any]:
    """The first root step, ``one``, recorded as succeeded with result ``1``, as Lambda sends it."""
    op = {
        "Id": FIRST,
        "Type": "STEP",
        "SubType": "Step",
        "Name": "one",
        "Status": "SUCCEEDED",
        "StartTimestamp": 1_700_000_000_000,
        "EndTimestamp": 1_700_000_000_001,
        "StepDetails": {"Attempt": 1, "Result": "1"},
    }
    op.update(overrides)
    return op


def event_with(operations: list[Any]) -> dict[str, Any]:
    return {
        "DurableExecutionArn": ARN,
        "CheckpointToken": "t",
        "InitialExecutionState": {"Operations": [EXECUTION_OP, *operations]},
    }


async def step_one(step: StepContext) -> int:
    ran.append(step.operation_id)
    return 1


ran: list[str] = []


@durable_execution
async def one_step(event: Any, ctx: DurableContext) -> Any:
    return await ctx.step(step_one, name="one")


async def invoke(event: dict[str, Any], backend: MemoryBackend | None = None) -> dict[str, Any]:
    client = backend or MemoryBackend()
    return await one_step.invoke_async(event, FakeLambdaContext(), client=client)


# -- what waits to be decoded decodes ---------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
_timestamp = st.none() | st.integers() | st.floats() | st.text(max_size=5) | _json
_details = (
    st.none()
    | _json
    | st.fixed_dictionaries(
        {},
        optional={
            "Attempt": _json,
            "Result": _json,
            "Error": _json,
            "NextAttemptTimestamp": _timestamp,
            "ScheduledEndTimestamp": _timestamp,
            "ReplayChildren": _json,
            "CallbackId": _json,
            "InputPayload": _json,
        },
    )
)
_operations = st.fixed_dictionaries(
    {},
    optional={
        "Id": st.sampled_from(["s1", FIRST]) | _json,
        "Type": st.sampled_from(["STEP", "WAIT", "CONTEXT", "EXECUTION", "X"]) | _json,
        "Status": st.sampled_from(["SUCCEEDED", "STARTED", "FAILED", "PAUSED"]) | _json,
        "SubType": _json,
        "Name": _json,
        "ParentId": _json,
        "StartTimestamp": _timestamp,
        "EndTimestamp": _timestamp,
        "StepDetails": _details,
        "ContextDetails": _details,
        "WaitDetails": _details,
        "CallbackDetails": _details,
        "ChainedInvokeDetails": _details,
        "ExecutionDetails": _details,
    },
)


@settings(max_examples=300, deadline=None, database=None)
@given(raw=_operations)
def test_an_operation_left_to_decode_later_always_decodes(raw: dict[str, Any]) -> None:
    """Deferring is safe only if decoding cannot fail: a broken event is refused up front."""
    if decodes_cleanly(raw):
        op = operation_from_wire()(raw)
        assert op.id == raw["Id"]


#: EXECUTION dicts as Lambda sends them, and the same with one field replaced by anything
#: (``_operations`` seldom makes a well-formed one).
_clean_executions = st.fixed_dictionaries(
    {
        "Id": st.text(min_size=1, max_size=8),
        "Type": st.just("EXECUTION"),
        "Status": st.sampled_from(["STARTED", "SUCCEEDED", "FAILED"]),
    },
    optional={
        "StartTimestamp": st.integers(0, 2_000_000_000_000),
        "EndTimestamp": st.integers(0, 2_000_000_000_000),
        "ExecutionDetails": st.fixed_dictionaries(
            {}, optional={"InputPayload": st.none() | st.text(max_size=8)}
        ),
    },
)
_field_names = st.sampled_from(
    ["Id", "Type", "Status", "StartTimestamp", "ExecutionDetails", "StepDetails", "WaitDetails"]
)
_executions = _clean_executions | st.builds(
    lambda raw, key, value: {**raw, key: value},
    _clean_executions,
    _field_names,
    _json | _details,
)


@settings(max_examples=300, deadline=None, database=None)
@given(raw=_executions)
def test_an_execution_left_to_decode_later_decodes_to_the_input_read_from_its_dict(
    raw: dict[str, Any],
) -> None:
    """The input read from a deferred EXECUTION dict is the one its model would carry."""
    log = OperationLog()
    if execution_decodes_cleanly(raw):
        op = operation_from_wire()(raw)
        log.apply_raw([raw])
        details = op.execution_details
        assert log.input_payload == (details.input_payload if details else None)
        assert log.execution == op
        assert not log.has_history
    else:
        try:
            log.apply_raw([raw])  # decoded at once: whatever it raises, an event refuses
        except Exception:
            return
        assert log.execution == operation_from_wire()(raw)


def test_the_execution_strategy_reaches_both_kinds_of_dict() -> None:
    """The property above sees deferred and decoded-at-once EXECUTION dicts alike."""
    seen: set[bool] = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(raw=_executions)
    def sample(raw: dict[str, Any]) -> None:
        seen.add(execution_decodes_cleanly(raw))

    sample()
    assert seen == {True, False}


def test_an_execution_as_lambda_sends_it_is_left_to_decode_later() -> None:
    sent = {
        **EXECUTION_OP,
        "StartTimestamp": 1_700_000_000_000,
        "ExecutionDetails": {"InputPayload": '{"k": 1}'},
    }
    assert execution_decodes_cleanly(EXECUTION_OP)
    assert execution_decodes_cleanly(sent)
    assert not execution_decodes_cleanly({**EXECUTION_OP, "ExecutionDetails": {"InputPayload": 5}})
    log = OperationLog()
    log.apply_raw([sent])
    assert log.input_payload == '{"k": 1}'
    assert not log.has_history
    assert log.execution == operation_from_wire()(sent)


def test_a_step_as_lambda_records_it_is_left_to_decode_later() -> None:
    """The fast path applies to the shape the service really sends (else it helps nothing)."""
    assert decodes_cleanly(recorded_step())
    assert decodes_cleanly(recorded_step(Status="STARTED", EndTimestamp=None))
    assert not decodes_cleanly(EXECUTION_OP)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "broken",
    [
        {"StartTimestamp": "yesterday"},
        {"EndTimestamp": 10**20},
        {"StepDetails": [1]},
        {"StepDetails": {"Result": "1", "NextAttemptTimestamp": "soon"}},
        {"WaitDetails": {"ScheduledEndTimestamp": "later"}},
    ],
)
async def test_a_malformed_recorded_operation_is_refused_before_anything_runs(
    broken: dict[str, Any],
) -> None:
    backend = MemoryBackend()
    ran.clear()
    with pytest.raises(InvalidEventError, match="Operations is malformed"):
        await invoke(event_with([recorded_step(**broken)]), backend)
    assert ran == []
    assert backend.checkpoint_calls == []


# -- what replay reports is unchanged ---------------------------------------------------


@pytest.mark.anyio
async def test_a_step_recorded_as_succeeded_returns_its_result_without_running() -> None:
    ran.clear()
    output = await invoke(event_with([recorded_step(StepDetails={"Result": '{"t":"t","v":[]}'})]))
    assert output == {"Status": "SUCCEEDED", "Result": "[]"}
    assert ran == []


@pytest.mark.anyio
async def test_a_recorded_step_under_another_name_is_non_deterministic() -> None:
    ran.clear()
    output = await invoke(event_with([recorded_step(Name="zero")]))
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"].endswith(".NonDeterministicExecutionError")
    assert "name='zero'" in output["Error"]["ErrorMessage"]
    assert ran == []


@pytest.mark.anyio
async def test_a_replayed_result_that_does_not_decode_raises_when_awaited() -> None:
    seen: list[BaseException] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        pending = ctx.step(step_one, name="one")  # decoding waits for the await
        try:
            await pending
        except SerDesError as error:
            seen.append(error)
        return "caught"

    event = event_with([recorded_step(StepDetails={"Result": "{not json"})])
    output = await handler.invoke_async(event, FakeLambdaContext(), client=MemoryBackend())
    assert output == {"Status": "SUCCEEDED", "Result": '"caught"'}
    assert len(seen) == 1
    assert FIRST in str(seen[0])


@pytest.mark.anyio
async def test_a_replayed_step_never_awaited_still_fails_the_execution() -> None:
    invocations: list[int] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        invocations.append(1)
        if len(invocations) == 1:
            await ctx.step(step_one, name="one")
        else:
            ctx.step(step_one, name="one")  # type: ignore[unused-coroutine]  # the bug under test
        await ctx.wait(seconds=5)
        return "done"

    result = await LocalRunner(handler).run()
    gc.collect()  # a leftover coroutine would warn here (warnings are errors in this suite)
    assert len(invocations) == 2
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.type == "durable_async.UnawaitedOperationError"
    assert "'one'" in (result.error.message or "")


@pytest.mark.anyio
async def test_the_state_view_shows_models_of_operations_not_yet_decoded() -> None:
    seen: dict[str, Any] = {}

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        seen.update(ctx.state.operations)  # before replay reads anything
        return int(await ctx.step(step_one, name="one"))

    event = event_with([recorded_step()])
    output = await handler.invoke_async(event, FakeLambdaContext(), client=MemoryBackend())
    assert output == {"Status": "SUCCEEDED", "Result": "1"}
    assert list(seen) == ["exec", FIRST]
    assert all(isinstance(op, Operation) for op in seen.values())
    assert seen[FIRST].step_details is not None
    assert seen[FIRST].step_details.result == "1"


# -- IDs: AWS's derivation, whether or not the process has hashed them before ----------


def aws_id(prefix: str | None, position: int) -> str:
    key = f"{prefix}-{position}" if prefix else str(position)
    return hashlib.blake2b(key.encode()).hexdigest()[:64]


def test_root_ids_are_aws_ids_before_and_after_the_process_keeps_them() -> None:
    _identity._ROOT_IDS.clear()
    positions = [1, 2, 3, 0, 57, 9_999, 10_000, 12_345, 2, 1]
    assert [operation_id(None, n) for n in positions] == [aws_id(None, n) for n in positions]
    assert [operation_id("p", n) for n in positions] == [aws_id("p", n) for n in positions]
    assert len(_identity._ROOT_IDS) <= _identity._ROOT_LIMIT


def test_threads_filling_the_root_ids_at_once_agree_with_aws() -> None:
    _identity._ROOT_IDS.clear()
    start = threading.Barrier(4)

    def derive(stride: int) -> list[str]:
        start.wait()
        return [operation_id(None, n) for n in range(stride, 3_000, 4)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(derive, range(4)))
    for stride, ids in enumerate(results):
        assert ids == [aws_id(None, n) for n in range(stride, 3_000, 4)]
    kept = _identity._ROOT_IDS
    assert kept == {n: aws_id(None, n) for n in range(3_000)}
