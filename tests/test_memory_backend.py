"""The in-memory backend rejects what the service rejects, so SDK tests would notice."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
from support import start

from durable_async import CheckpointError
from durable_async._wire.enums import OperationAction, OperationType
from durable_async._wire.models import CheckpointRequest, OperationUpdate
from durable_async.testing import MemoryBackend

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
