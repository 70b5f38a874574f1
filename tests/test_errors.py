"""``DurableOperationError.from_error_object`` rebuilds recorded errors as typed classes."""

from __future__ import annotations

import pytest

from durable_async import (
    CallbackError,
    CallbackFailedError,
    DurableOperationError,
    InvokeError,
    StepError,
    StepInterruptedError,
)
from durable_async._wire.models import ErrorObject

AWS = "aws_durable_execution_sdk_python.exceptions."


@pytest.mark.parametrize(
    ("recorded_type", "expected"),
    [
        (AWS + "StepError", StepError),
        ("durable_async.StepError", StepError),
        (AWS + "StepInterruptedError", StepInterruptedError),
        (AWS + "CallbackExternalError", CallbackFailedError),
        ("durable_async.CallbackFailedError", CallbackFailedError),
        ("ValueError", DurableOperationError),
        (None, DurableOperationError),
    ],
)
def test_recorded_names_rebuild_the_most_specific_class(
    recorded_type: str | None, expected: type[DurableOperationError]
) -> None:
    recorded = ErrorObject(message="m", type=recorded_type, data="d", stack_trace=("l1",))
    rebuilt = DurableOperationError.from_error_object(recorded)
    assert type(rebuilt) is expected
    assert (rebuilt.message, rebuilt.error_type, rebuilt.data, rebuilt.stack_trace) == (
        "m",
        recorded_type,
        "d",
        ("l1",),
    )


def test_a_recorded_name_outside_the_asked_class_falls_back_to_that_class() -> None:
    # A step's error recorded where an invoke failed is still raised as the InvokeError the
    # caller catches, never as an unrelated StepError.
    rebuilt = InvokeError.from_error_object(ErrorObject(message="m", type=AWS + "StepError"))
    assert type(rebuilt) is InvokeError


def test_a_subclass_name_under_a_parent_class_keeps_the_subclass() -> None:
    rebuilt = CallbackError.from_error_object(ErrorObject(type=AWS + "CallbackTimeoutError"))
    assert isinstance(rebuilt, CallbackError)
    assert type(rebuilt).__name__ == "CallbackTimeoutError"


def test_no_recorded_error_rebuilds_an_empty_one() -> None:
    rebuilt = StepError.from_error_object(None)
    assert type(rebuilt) is StepError
    assert (rebuilt.message, rebuilt.error_type, str(rebuilt)) == (None, None, "")
