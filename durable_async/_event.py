"""The invocation event Lambda hands a durable handler: what it holds, checked on arrival.

A malformed or non-durable event raises ``InvalidEventError`` with what was expected, before
anything is run or sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from durable_async._errors import InvalidEventError, SerDesError
from durable_async._replay import OperationLog


def parse_event(event: Any) -> tuple[str, str, list[dict[str, Any]], str | None]:
    """The execution ARN, checkpoint token, inline operations and next-page marker."""
    if not isinstance(event, Mapping):
        msg = (
            f"expected the durable invocation input (a JSON object), got "
            f"{type(event).__qualname__}; is durable execution enabled for this function?"
        )
        raise InvalidEventError(msg)
    missing = [key for key in ("DurableExecutionArn", "CheckpointToken") if key not in event]
    if missing:
        msg = (
            f"the event is not a durable invocation input: it has no {' or '.join(missing)} "
            f"(keys: {sorted(event)[:10]}); configure the function with DurableConfig, or "
            "call the undecorated function for plain events"
        )
        raise InvalidEventError(msg)
    arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
    if not isinstance(arn, str) or not arn or not isinstance(token, str) or not token:
        msg = "DurableExecutionArn and CheckpointToken must be non-empty strings"
        raise InvalidEventError(msg)
    state = event.get("InitialExecutionState") or {}
    if not isinstance(state, Mapping):
        msg = "InitialExecutionState must be an object"
        raise InvalidEventError(msg)
    operations = state.get("Operations") or []
    if not isinstance(operations, list) or not all(isinstance(op, Mapping) for op in operations):
        msg = "InitialExecutionState.Operations must be a list of objects"
        raise InvalidEventError(msg)
    marker = state.get("NextMarker") or None
    return arn, token, operations, marker


def decode_input(log: OperationLog) -> Any:
    """The execution's input: the EXECUTION operation's payload, as JSON (``{}`` if none)."""
    execution = log.execution
    details = execution.execution_details if execution is not None else None
    payload = details.input_payload if details is not None else None
    if payload is None or not payload.strip():
        return {}
    try:
        return json.loads(payload)
    except ValueError as exc:
        msg = f"the execution input is not JSON: {exc}"
        raise SerDesError(msg) from exc
