"""The wire converter: PascalCase keys, omitted ``None``s, both timestamp forms, unknown keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from durable_async._wire.converter import from_wire, operation_from_wire, to_wire
from durable_async._wire.enums import (
    InvocationStatus,
    OperationAction,
    OperationStatus,
    OperationType,
)
from durable_async._wire.models import (
    CallbackDetails,
    ChainedInvokeDetails,
    CheckpointResponse,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    ExecutionStatePage,
    InvocationOutput,
    Operation,
    OperationUpdate,
    StepDetails,
    StepOptions,
    WaitDetails,
)

STARTED = datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
ERROR = ErrorObject(message="boom", type="ValueError", data='{"k":1}', stack_trace=("a", "b"))

EVERY_FIELD = Operation(
    id="op-1",
    type=OperationType.STEP,
    status=OperationStatus.PENDING,
    parent_id="parent-1",
    name="charge",
    sub_type="Step",
    start_timestamp=STARTED,
    end_timestamp=STARTED,
    execution_details=ExecutionDetails(input_payload='{"a":1}'),
    context_details=ContextDetails(replay_children=True, result='"r"', error=ERROR),
    step_details=StepDetails(attempt=2, next_attempt_timestamp=STARTED, result="1", error=ERROR),
    wait_details=WaitDetails(scheduled_end_timestamp=STARTED),
    callback_details=CallbackDetails(callback_id="cb", result='"ok"', error=ERROR),
    chained_invoke_details=ChainedInvokeDetails(result="{}", error=ERROR),
)


def test_an_operation_survives_the_round_trip_with_every_field() -> None:
    wire = to_wire(EVERY_FIELD)
    assert wire["Id"] == "op-1"
    assert wire["StepDetails"]["Error"] == {
        "ErrorMessage": "boom",
        "ErrorType": "ValueError",
        "ErrorData": '{"k":1}',
        "StackTrace": ["a", "b"],
    }
    assert from_wire(wire, Operation) == EVERY_FIELD
    assert operation_from_wire()(wire) == EVERY_FIELD


def test_timestamps_arrive_as_epoch_millis_from_lambda_and_datetimes_from_botocore() -> None:
    millis = int(STARTED.timestamp() * 1000)
    from_event = operation_from_wire()(
        {"Id": "a", "Type": "WAIT", "Status": "STARTED", "StartTimestamp": millis,
         "WaitDetails": {"ScheduledEndTimestamp": millis}}
    )  # fmt: skip
    from_botocore = from_wire(
        {"Id": "a", "Type": "WAIT", "Status": "STARTED", "StartTimestamp": STARTED,
         "WaitDetails": {"ScheduledEndTimestamp": STARTED.replace(tzinfo=None)}},
        Operation,
    )  # fmt: skip
    assert from_event.start_timestamp == from_botocore.start_timestamp == STARTED
    assert from_event.wait_details == from_botocore.wait_details == WaitDetails(STARTED)


def test_a_timestamp_in_another_zone_is_kept_as_the_same_instant_in_shared_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = STARTED.astimezone(plus_two)
    op = from_wire(
        {"Id": "a", "Type": "WAIT", "Status": "STARTED", "StartTimestamp": local}, Operation
    )
    assert op.start_timestamp == STARTED
    assert op.start_timestamp is not None
    assert op.start_timestamp.tzinfo is UTC


def test_unknown_keys_from_a_newer_service_are_ignored() -> None:
    response = from_wire(
        {
            "CheckpointToken": "t",
            "NewExecutionState": {
                "Operations": [
                    {"Id": "a", "Type": "STEP", "Status": "SUCCEEDED", "Shiny": 1,
                     "StepDetails": {"Attempt": 1, "Result": "2", "AlsoNew": True}}
                ],
                "NextMarker": "m",
            },
            "ResponseMetadata": {"HTTPStatusCode": 200},
        },
        CheckpointResponse,
    )  # fmt: skip
    assert response.checkpoint_token == "t"
    assert response.new_execution_state == ExecutionStatePage(
        (
            Operation(
                "a",
                OperationType.STEP,
                OperationStatus.SUCCEEDED,
                step_details=StepDetails(attempt=1, result="2"),
            ),
        ),
        "m",
    )


def test_updates_omit_absent_fields_and_use_the_service_names() -> None:
    update = OperationUpdate(
        id="op-1",
        type=OperationType.STEP,
        action=OperationAction.RETRY,
        sub_type="Step",
        error=ErrorObject(message="boom", type="ValueError"),
        step_options=StepOptions(next_attempt_delay_seconds=5),
    )
    assert to_wire(update) == {
        "Id": "op-1",
        "Type": "STEP",
        "Action": "RETRY",
        "SubType": "Step",
        "Error": {"ErrorMessage": "boom", "ErrorType": "ValueError"},
        "StepOptions": {"NextAttemptDelaySeconds": 5},
    }


@pytest.mark.parametrize("status", list(InvocationStatus))
@pytest.mark.parametrize("result", [None, "", '{"a": 1}'])
def test_an_invocation_output_built_directly_is_what_the_converter_makes(
    status: InvocationStatus, result: str | None
) -> None:
    from durable_async._invocation import _output

    assert _output(status, result=result) == to_wire(InvocationOutput(status=status, result=result))
