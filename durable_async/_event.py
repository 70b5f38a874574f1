"""The invocation event Lambda hands a durable handler: what it holds, checked on arrival.

A malformed or non-durable event raises ``InvalidEventError`` with what was expected, before
anything is run or sent; so does state that lists an operation twice. State pages that loop
raise a retryable ``ExecutionStateError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from durable_async._client.base import DurableExecutionClient
from durable_async._errors import BackendError, ExecutionStateError, InvalidEventError, SerDesError
from durable_async._replay import OperationLog
from durable_async._wire.models import GetExecutionStateRequest


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
    # All plain dicts, checked in C, first: events hold thousands of operations.
    if not isinstance(operations, list) or (
        not _ONLY_DICT.issuperset(map(type, operations))
        and not all(isinstance(op, Mapping) for op in operations)
    ):
        msg = "InitialExecutionState.Operations must be a list of objects"
        raise InvalidEventError(msg)
    marker = state.get("NextMarker") or None
    if marker is not None and not isinstance(marker, str):
        msg = f"InitialExecutionState.NextMarker must be a string, got {type(marker).__name__}"
        raise InvalidEventError(msg)
    return arn, token, operations, marker


def updated_operation_ids(event: Mapping[str, Any]) -> list[str]:
    """The IDs of operations changed while the execution was suspended (``[]`` if none).

    The service lists them (``UpdatedOperationIds``) so that what another party ended (a
    wait that elapsed, a callback answered, an invoke that finished) is told apart from
    history an earlier invocation already saw. Only plugins use them.
    """
    ids = event.get("UpdatedOperationIds") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        msg = "UpdatedOperationIds must be a list of operation IDs (non-empty strings)"
        raise InvalidEventError(msg)
    return ids


async def page_in(
    client: DurableExecutionClient,
    arn: str,
    token: str,
    marker: str | None,
    log: OperationLog,
    logger: logging.Logger,
) -> int:
    """Read the state pages after the event's into ``log``; the number of operations read.

    A marker seen before would page forever: the service's answer is broken, and the
    invocation fails (retryably) before anything runs.
    """
    seen: set[str] = set()
    count = 0
    while marker:
        if not isinstance(marker, str):
            msg = f"GetDurableExecutionState failed: a NextMarker is a {type(marker).__name__}"
            raise ExecutionStateError(msg, retryable=True)
        if marker in seen:
            msg = (
                "GetDurableExecutionState failed: its pages loop (a NextMarker came back "
                f"after {len(seen)} page(s)); nothing was run"
            )
            raise ExecutionStateError(msg, retryable=True)
        seen.add(marker)
        try:
            page = await client.get_execution_state(
                GetExecutionStateRequest(arn, token, marker), logger
            )
        except BackendError:
            raise
        except Exception as exc:  # a custom client broke its contract
            msg = f"GetDurableExecutionState failed: the client raised {type(exc).__name__}"
            raise ExecutionStateError(msg, retryable=True) from exc
        log.apply(page.operations)
        count += len(page.operations)
        marker = page.next_marker
    return count


def check_unique(listed: int, log: OperationLog, raw_operations: list[dict[str, Any]]) -> None:
    """Refuse a state that lists an operation twice: which record holds is unknowable."""
    if len(log) == listed:
        return
    ids = [raw.get("Id") for raw in raw_operations]
    twice = sorted({str(i) for i in ids if ids.count(i) > 1})[:5]
    named = f": {', '.join(twice)}" if twice else " (across state pages)"
    msg = f"the execution state lists {listed - len(log)} operation ID(s) more than once{named}"
    raise InvalidEventError(msg)


def decode_input(log: OperationLog) -> Any:
    """The execution's input: the EXECUTION operation's payload, as JSON (``{}`` if none)."""
    payload = log.input_payload
    if payload is None or not payload.strip():
        return {}
    try:
        return json.loads(payload)
    except ValueError as exc:
        msg = f"the execution input is not JSON: {exc}"
        raise SerDesError(msg) from exc


_ONLY_DICT = frozenset({dict})
