"""``DurableExecutionClient``: the two calls the SDK makes to the durable-execution API."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)


class DurableExecutionClient(ABC):
    """The backend contract.

    Implementations raise ``CheckpointError`` / ``ExecutionStateError`` (with ``retryable``
    set) and nothing else; the SDK decides from ``retryable`` whether the invocation is
    retried by Lambda or the execution fails. A ``ClientToken`` in the request must be
    sent unchanged on every retry of that request.
    """

    @abstractmethod
    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        """Record ``params.updates``; the response carries the next token."""

    @abstractmethod
    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        """Read one page of the execution's operations."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the default has nothing to release."""
