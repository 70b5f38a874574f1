"""Per-invocation services shared by every context of one invocation."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import anyio

from durable_async._batcher import CheckpointBatcher
from durable_async._replay import OperationLog
from durable_async._suspend import SuspensionMonitor


class InvocationRuntime:
    """What operations need: the log, the batcher, suspension, the thread limiter.

    Lives exactly as long as one invocation; nothing in it is reused by the next.
    """

    __slots__ = (
        "arn",
        "batcher",
        "fatal",
        "deadline_left_nothing_pending",
        "lambda_context",
        "limiter",
        "log",
        "logger",
        "monitor",
        "tasks",
        "_last_tracked",
    )

    def __init__(
        self,
        *,
        arn: str,
        log: OperationLog,
        batcher: CheckpointBatcher,
        monitor: SuspensionMonitor,
        limiter: anyio.CapacityLimiter,
        lambda_context: Any,
        logger: logging.Logger,
    ) -> None:
        self.arn = arn
        self.log = log
        self.batcher = batcher
        self.monitor = monitor
        self.limiter = limiter
        self.lambda_context = lambda_context
        self.logger = logger
        #: An error that decides the invocation's outcome whatever the handler does with it.
        self.fatal: BaseException | None = None
        #: Set when Lambda's deadline cut running work while the service had nothing pending.
        self.deadline_left_nothing_pending = False
        #: Tasks that ran operations of this invocation; none may outlive it.
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._last_tracked: asyncio.Task[Any] | None = None

    def track_current_task(self) -> None:
        """Remember the running task so the invocation can settle it before returning."""
        task = asyncio.current_task()
        if task is not None and task is not self._last_tracked:
            self.tasks.add(task)
            self._last_tracked = task

    def record_fatal(self, error: BaseException) -> None:
        """Remember the first error that must end the invocation."""
        if self.fatal is None:
            self.fatal = error
