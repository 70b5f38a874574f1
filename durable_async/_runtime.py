"""Per-invocation services shared by every context of one invocation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from durable_async._batcher import CheckpointBatcher
from durable_async._identity import IdentityFields, OperationIdentity
from durable_async._replay import OperationLog
from durable_async._suspend import SuspensionMonitor
from durable_async._tasks import TaskRegistry

if TYPE_CHECKING:
    import anyio

    from durable_async._plugins import PluginDispatcher


class InvocationRuntime:
    """What operations need: the log, the batcher, suspension, the thread limiter.

    Lives exactly as long as one invocation; nothing in it is reused by the next.
    """

    __slots__ = (
        "arn",
        "batcher",
        "fatal",
        "deadline_left_nothing_pending",
        "issued",
        "_prune_issued_at",
        "warned_swallowed",
        "lambda_context",
        "_limiter",
        "log",
        "logger",
        "monitor",
        "pipelined",
        "plugins",
        "tasks",
    )

    def __init__(
        self,
        *,
        arn: str,
        log: OperationLog,
        batcher: CheckpointBatcher,
        monitor: SuspensionMonitor,
        tasks: TaskRegistry,
        limiter: Callable[[], anyio.CapacityLimiter],
        lambda_context: Any,
        logger: logging.Logger,
        plugins: PluginDispatcher | None = None,
        pipelined: bool = False,
    ) -> None:
        self.arn = arn
        #: Whether at-least-once steps go on before their results are recorded by default.
        self.pipelined = pipelined
        #: The invocation's instrumentation plugins; None (checked first) when there are none.
        self.plugins = plugins
        self.log = log
        self.batcher = batcher
        self.monitor = monitor
        self._limiter = limiter
        self.lambda_context = lambda_context
        self.logger = logger
        #: An error that decides the invocation's outcome whatever the handler does with it.
        self.fatal: BaseException | None = None
        #: Set when Lambda's deadline cut running work while the service had nothing pending.
        self.deadline_left_nothing_pending = False
        #: Every live task created inside this invocation; none may outlive it.
        self.tasks = tasks
        self.warned_swallowed = False
        #: The coroutine of every operation called and not yet started, to find those never
        #: awaited. (A replayed step gives its identity's fields as a plain tuple: cheaper.)
        self.issued: list[tuple[Coroutine[Any, Any, Any], IdentityFields]] = []
        self._prune_issued_at = 64

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The worker-thread limiter, made when a plain step first needs it.

        Making one loads anyio and its asyncio backend, which a handler whose steps are all
        ``async`` never uses: its invocations never pay for them.
        """
        return self._limiter()

    def issue(
        self, coro: Coroutine[Any, Any, Any], identity: IdentityFields
    ) -> Coroutine[Any, Any, Any]:
        """Remember an operation's coroutine (see ``never_awaited``) and hand it back."""
        issued = self.issued
        issued.append((coro, identity))
        if len(issued) > self._prune_issued_at:
            # Only a coroutine that never started can end up unawaited: forget the others,
            # so a large map does not keep every finished step's coroutine to the end
            # (amortised: the list at most doubles between two passes).
            issued[:] = [
                entry
                for entry in issued
                if (coro := entry[0]).cr_frame is not None  # type: ignore[attr-defined]
                and not coro.cr_running  # type: ignore[attr-defined]
                and not coro.cr_suspended  # type: ignore[attr-defined]
            ]
            self._prune_issued_at = 2 * len(issued) + 64
        return coro

    def never_awaited(self) -> list[OperationIdentity]:
        """Close the operations' coroutines that never ran, and say whose they were."""
        unawaited = []
        for coro, identity in self.issued:
            if _never_started(coro):
                coro.close()
                unawaited.append(OperationIdentity(*identity))
        self.issued.clear()
        return unawaited

    def swallowed_suspension(self, context_id: str | None, what: str) -> None:
        """Warn that ``what`` (a context's body) went on after its suspension began.

        The context is not completed in this invocation: the operation whose suspension
        was swallowed has not taken effect, so the next invocation replays the body.
        Warned once per invocation.
        """
        if self.warned_swallowed:
            return
        self.warned_swallowed = True
        suspended = self.monitor.suspended
        parked = next((op for op in suspended if op.parent_id == context_id), None)
        if parked is None and suspended:
            parked = suspended[0]
        label = "an operation" if parked is None else f"{parked.type} {parked.name or parked.id!r}"
        self.logger.warning(
            "%s went on after the suspension of %s was swallowed (an except clause caught "
            "BaseException?); it is not completed in this invocation and runs again in the "
            "next one",
            what,
            label,
            extra={"executionArn": self.arn},
        )

    def record_fatal(self, error: BaseException) -> None:
        """Remember the first error that must end the invocation."""
        if self.fatal is None:
            self.fatal = error


def _never_started(coro: Coroutine[Any, Any, Any]) -> bool:
    """Created and never started: a frame, neither running nor suspended."""
    state: Any = coro  # a native coroutine: cr_* are not in the Coroutine protocol
    return state.cr_frame is not None and not state.cr_running and not state.cr_suspended
