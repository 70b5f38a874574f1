"""The in-memory backend rejects what the service rejects, so SDK tests would notice."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
from support import start

from durable_async import CheckpointError
from durable_async._wire.enums import OperationAction, OperationType
from durable_async._wire.models import (
    ChainedInvokeOptions,
    CheckpointRequest,
    OperationUpdate,
    StepOptions,
    WaitOptions,
)
from durable_async.testing import ErrorObject, MemoryBackend

LOG = logging.getLogger(__name__)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"id": "has space"}, "Id"),
        ({"id": "x" * 65}, "Id"),
        ({"parent_id": "bad/parent"}, "ParentId"),
        ({"name": "tab\there"}, "Name"),
        ({"name": "x" * 257}, "Name"),
        ({"sub_type": "x" * 33}, "SubType"),
        ({"payload": "x" * (256 * 1024 + 1)}, "Payload"),
    ],
)
async def test_invalid_updates_are_rejected_and_nothing_is_recorded(
    fields: dict[str, Any], problem: str
) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    valid = OperationUpdate(id="op-1", type=OperationType.STEP, action=OperationAction.START)
    update = attrs.evolve(valid, **fields)
    token = backend.executions[arn].token
    with pytest.raises(CheckpointError, match=problem) as caught:
        await backend.checkpoint(CheckpointRequest(arn, token, (update,)), LOG)
    assert caught.value.retryable is False
    assert backend.executions[arn].updates == []
    assert backend.executions[arn].token == token


@pytest.mark.anyio
async def test_an_error_object_over_the_services_32_kib_limit_is_rejected() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    update = OperationUpdate(
        id="op-1",
        type=OperationType.STEP,
        action=OperationAction.FAIL,
        error=ErrorObject(message="x" * 40_000, type="RuntimeError"),
    )
    token = backend.executions[arn].token
    with pytest.raises(CheckpointError):
        await backend.checkpoint(CheckpointRequest(arn, token, (update,)), LOG)


def _update(
    op_type: OperationType, action: OperationAction, op_id: str = "op-1", **fields: Any
) -> OperationUpdate:
    return OperationUpdate(id=op_id, type=op_type, action=action, **fields)


def _wait_start(op_id: str = "op-w") -> OperationUpdate:
    return _update(
        OperationType.WAIT, OperationAction.START, op_id, wait_options=WaitOptions(wait_seconds=5)
    )


_STEP_SUCCEEDED = [
    _update(OperationType.STEP, OperationAction.START),
    _update(OperationType.STEP, OperationAction.SUCCEED, payload="1"),
]

#: Checkpoint batches; all but the last are accepted, the service rejects the last. The
#: rules are those of AWS's local backend (``aws_durable_execution_sdk_python_testing``:
#: ``checkpoint/validators``), which mirrors the durable-execution service.
_REJECTED = {
    # An operation that ended takes no further updates.
    "start-a-succeeded-step": [
        _STEP_SUCCEEDED,
        [_update(OperationType.STEP, OperationAction.START)],
    ],
    "succeed-a-succeeded-step": [
        _STEP_SUCCEEDED,
        [_update(OperationType.STEP, OperationAction.SUCCEED, payload="2")],
    ],
    # One update per operation per batch.
    "same-wait-twice-in-a-batch": [[_wait_start(), _wait_start()]],
    "unknown-parent": [
        [_update(OperationType.STEP, OperationAction.START, parent_id="no-such-context")]
    ],
    # The EXECUTION update comes last in its batch.
    "execution-not-last": [
        [
            _update(OperationType.EXECUTION, OperationAction.SUCCEED, "exec", payload="1"),
            _update(OperationType.STEP, OperationAction.START),
        ]
    ],
    # validators/operations/callback.py: START is CALLBACK's only action.
    "succeed-a-callback": [[_update(OperationType.CALLBACK, OperationAction.SUCCEED, "cb")]],
    "callback-cancel": [
        [_update(OperationType.CALLBACK, OperationAction.START)],
        [_update(OperationType.CALLBACK, OperationAction.CANCEL)],
    ],
    # validators/operations/invoke.py: START is CHAINED_INVOKE's only action ...
    "invoke-cancel": [
        [
            _update(
                OperationType.CHAINED_INVOKE,
                OperationAction.START,
                chained_invoke_options=ChainedInvokeOptions("payments"),
            )
        ],
        [_update(OperationType.CHAINED_INVOKE, OperationAction.CANCEL)],
    ],
    # ... and it requires ChainedInvokeOptions.
    "invoke-without-options": [[_update(OperationType.CHAINED_INVOKE, OperationAction.START)]],
    # validators/operations/wait.py: no CANCEL of a WAIT that does not exist.
    "cancel-unknown-wait": [[_update(OperationType.WAIT, OperationAction.CANCEL)]],
    # validators/operations/step.py: RETRY needs StepOptions ...
    "retry-without-options": [
        [
            _update(OperationType.STEP, OperationAction.START),
            _update(OperationType.STEP, OperationAction.RETRY, error=ErrorObject("boom")),
        ]
    ],
    # ... and carries an error or a payload, not both.
    "retry-with-error-and-payload": [
        [
            _update(OperationType.STEP, OperationAction.START),
            _update(
                OperationType.STEP,
                OperationAction.RETRY,
                payload='"state"',
                error=ErrorObject("boom"),
                step_options=StepOptions(5),
            ),
        ]
    ],
    # validators/operations/context.py: checked for a CONTEXT started in the same batch.
    "context-fail-with-payload": [
        [
            _update(OperationType.CONTEXT, OperationAction.START),
            _update(
                OperationType.CONTEXT, OperationAction.FAIL, payload='"x"', error=ErrorObject()
            ),
        ]
    ],
    # validators/operations/execution.py: no error on SUCCEED, no payload on FAIL.
    "execution-succeed-with-error": [
        [_update(OperationType.EXECUTION, OperationAction.SUCCEED, error=ErrorObject("x"))]
    ],
    "execution-fail-with-payload": [
        [_update(OperationType.EXECUTION, OperationAction.FAIL, payload='"x"')]
    ],
}


@pytest.mark.anyio
@pytest.mark.parametrize("batches", _REJECTED.values(), ids=_REJECTED.keys())
async def test_updates_the_service_rejects_raise_checkpoint_error(
    batches: list[list[OperationUpdate]],
) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    *accepted, rejected = batches
    for updates in accepted:
        token = backend.executions[arn].token
        await backend.checkpoint(CheckpointRequest(arn, token, tuple(updates)), LOG)
    request = CheckpointRequest(arn, backend.executions[arn].token, tuple(rejected))
    with pytest.raises(CheckpointError):
        await backend.checkpoint(request, LOG)
