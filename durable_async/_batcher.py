"""The checkpoint batcher: one flush task turns queued updates into few API calls.

Updates come in three kinds. *Awaited* ones (a step's result) resolve their caller once the
service has recorded them. *Fire-and-forget* ones (a wait's START) only need to reach the
service eventually. *Deferred* ones (an at-least-once step's START) are fire-and-forget
updates that are worth waiting for company: alone in the queue, they wait up to one
checkpoint round trip (the last call's duration) for the step's result, so a step whose
body is shorter than a round trip, async or run in a thread, costs one call, while a
longer body still has its START recorded as it runs.

The flush task wakes when an update is queued, lets the event loop run until no new update
arrives in a turn (so ready siblings of a ``gather`` join the same batch), and sends. While
a call is in flight, new updates queue up for the next one; calls are serial because each
consumes the checkpoint token the previous one returned, and updates go out in the order
they were queued (so parents and STARTs always precede their children and ends).

*Pipelined* updates (see ``pipeline``) are how pipelined steps go on without waiting:
queued like fire-and-forget ones unless a full batch is already waiting. Because the order
is kept, a recorded update implies every update queued before it is recorded too, and any
awaited update (an at-most-once START, a callback, the end of the invocation) waits for all
pipelined ones before it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from durable_async._client.base import DurableExecutionClient
from durable_async._errors import BackendError, CheckpointError, ExecutionStateError
from durable_async._replay import OperationLog
from durable_async._suspend import Suspended, SuspensionMonitor
from durable_async._update_queue import Batch, UpdateQueue
from durable_async._wire.enums import OperationType
from durable_async._wire.models import (
    CheckpointRequest,
    GetExecutionStateRequest,
    Operation,
    OperationUpdate,
)

#: Service limits per ``CheckpointDurableExecution`` call.
MAX_BATCH_BYTES = 750 * 1024
MAX_BATCH_UPDATES = 250
#: Turns the flush task yields, at most, for siblings to join a batch.
JOIN_TURNS = 8
#: How long a deferred update alone in the queue waits for company: the duration of the
#: last checkpoint call, within these bounds (seconds); before any call, the initial value.
HOLD_BOUNDS = (0.001, 0.2)
HOLD_INITIAL = 0.01


def _broken_contract(exc: BaseException) -> CheckpointError:
    """A client raised something other than ``BackendError``: a retryable failure."""
    error = CheckpointError(f"checkpoint client raised {exc!r}", retryable=True)
    error.__cause__ = exc
    return error


class MergeWatcher(Protocol):
    """Shown what each checkpoint response changes (instrumentation plugins' view)."""

    def before_merge(self, operations: Iterable[Operation], /) -> None:
        """Called with returned operations before the log records them."""

    def merged(self, updates: Sequence[OperationUpdate], /) -> Awaitable[None]:
        """Called once the call that sent ``updates`` is settled."""


class CheckpointBatcher:
    """Queues updates of one invocation and checkpoints them in order, in batches."""

    def __init__(
        self,
        client: DurableExecutionClient,
        durable_execution_arn: str,
        checkpoint_token: str,
        log: OperationLog,
        monitor: SuspensionMonitor,
        logger: logging.Logger,
        *,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_batch_updates: int = MAX_BATCH_UPDATES,
        context: contextvars.Context | None = None,
    ) -> None:
        self._client = client
        #: The context the flush task runs in; it is started with the first update, so an
        #: invocation that checkpoints nothing pays for no task.
        self._context = context
        self._flusher: asyncio.Task[None] | None = None
        self._arn = durable_execution_arn
        self._token = checkpoint_token
        self._log = log
        self._monitor = monitor
        self._logger = logger
        self._max_bytes = max_batch_bytes
        self._max_updates = max_batch_updates
        self._queue = UpdateQueue()
        #: Queued updates that are not deferred: while there are none, the flush task holds.
        self._urgent = 0
        self._hold = HOLD_INITIAL
        self._wake = asyncio.Event()
        self._closing = False
        self._running = True
        #: The error that stopped checkpointing for good, if any.
        self.failure: BackendError | None = None
        #: The service withdrew the token: the invocation must end ``PENDING``.
        self.revoked = False
        #: The service accepted the execution's own terminal update.
        self.completed = False
        #: ``CheckpointDurableExecution`` calls made, for statistics and tests.
        self.calls = 0
        #: Told how many seconds each successful checkpoint call took (the deadline's margin).
        self.on_call_latency: Callable[[float], None] | None = None
        #: Told what each response changes; None (no work at all) unless a plugin asks.
        self.merge_watcher: MergeWatcher | None = None

    @property
    def flusher(self) -> asyncio.Task[None] | None:
        """The flush task, once an update has been queued."""
        return self._flusher

    @property
    def checkpoint_token(self) -> str:
        """The token the next call will use."""
        return self._token

    @property
    def stopped(self) -> bool:
        """Whether checkpointing has ended (failure, revocation or completion)."""
        return self.failure is not None or self.revoked or self.completed

    def _check_open(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.revoked:
            raise Suspended
        if not self._running:
            msg = "checkpointing has ended for this invocation"
            raise CheckpointError(msg, retryable=True)

    def enqueue(self, update: OperationUpdate, *, defer: bool = False) -> None:
        """Queue a fire-and-forget update.

        ``defer``: the update may wait up to one round trip for another to share its call
        (an at-least-once step's START waiting for the step's result).
        """
        self._check_open()
        if defer:
            due = asyncio.get_running_loop().time() + self._hold
            self._queue.append(update, None, due)
        else:
            self._queue.append(update, None, None)
            self._urgent += 1
        self._wake_flusher()

    def commit(self, update: OperationUpdate) -> asyncio.Future[None]:
        """Queue an update; the future is done once the service has recorded it.

        A plain function returning the future, not a coroutine: thousands of branches
        wait here at once in a large map, and a coroutine frame each was measurable.
        """
        self._check_open()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(update, future, None)
        self._urgent += 1
        self._wake_flusher()
        return future

    def _wake_flusher(self) -> None:
        self._wake.set()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                self.run(), name="durable_async checkpoint flusher", context=self._context
            )

    async def pipeline(self, update: OperationUpdate) -> None:
        """Queue an update the caller need not wait for, unless a full batch is waiting.

        The update is sent in order with the rest, and a failure to record it fails the
        invocation (``failure``), so no completion is lost silently. Waiting once a full
        batch is queued bounds what a crash can leave unrecorded to the call in flight
        and one batch behind it.
        """
        if len(self._queue) >= self._max_updates:
            await self.commit(update)
        else:
            self.enqueue(update)

    async def run(self) -> None:
        """The flush task: send queued updates until closed or stopped."""
        try:
            await self._flush_until_done()
        except Exception as exc:  # a bug here must not leave waiters hanging
            failure = CheckpointError(f"the checkpoint flush task failed: {exc!r}", retryable=True)
            failure.__cause__ = exc
            self._fail(None, failure)
        finally:
            self._running = False
            self._settle_leftovers()

    async def _flush_until_done(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._closing:
                if not self._urgent:
                    await self._wait_for_company()
                await self._let_siblings_join()
            await self._send(self._take_batch())
            if self.stopped:
                return

    async def close(self) -> None:
        """Send what is still queued, then stop the flush task."""
        self._closing = True
        flusher = self._flusher
        if flusher is None:
            self._running = False  # nothing was ever queued, and nothing may be now
            return
        self._wake.set()
        try:
            await asyncio.shield(flusher)
        except asyncio.CancelledError:
            flusher.cancel()
            raise

    async def _wait_for_company(self) -> None:
        """Hold deferred updates until an urgent one is queued, the oldest is due, or close."""
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            self._wake.set()

        timer = asyncio.get_running_loop().call_at(self._queue.first_due() or 0.0, expire)
        try:
            while not (expired or self._urgent or self._closing):
                self._wake.clear()
                await self._wake.wait()
        finally:
            timer.cancel()

    async def _let_siblings_join(self) -> None:
        queue = self._queue
        seen = len(queue)
        for _ in range(JOIN_TURNS):
            await asyncio.sleep(0)
            if len(queue) == seen:
                return
            seen = len(queue)

    def _take_batch(self) -> Batch:
        batch = self._queue.take(self._max_updates, self._max_bytes)
        self._urgent -= batch.urgent
        return batch

    async def _send(self, batch: Batch) -> None:
        updates = tuple(batch.updates)
        request = CheckpointRequest(
            durable_execution_arn=self._arn,
            checkpoint_token=self._token,
            updates=updates,
            client_token=uuid.uuid4().hex,
        )
        self.calls += 1
        loop = asyncio.get_running_loop()
        watcher = self.merge_watcher
        try:
            started = loop.time()
            response = await self._client.checkpoint(request, self._logger)
            elapsed = loop.time() - started
            low, high = HOLD_BOUNDS
            self._hold = min(high, max(low, elapsed))
            if self.on_call_latency is not None:
                self.on_call_latency(elapsed)
            if response.checkpoint_token:
                self._token = response.checkpoint_token
            elif any(u.type is OperationType.EXECUTION for u in updates):
                self.completed = True
            else:
                self._revoke(batch)
                return
            if watcher is not None:
                watcher.before_merge(response.new_execution_state.operations)
            self._log.apply(response.new_execution_state.operations)
            marker = response.new_execution_state.next_marker
            seen: set[str] = set()
            while marker and not self.completed:
                if marker in seen:
                    msg = "GetDurableExecutionState failed: its pages loop (a NextMarker came back)"
                    raise ExecutionStateError(msg, retryable=True)
                seen.add(marker)
                page = await self._client.get_execution_state(
                    GetExecutionStateRequest(self._arn, self._token, marker), self._logger
                )
                if watcher is not None:
                    watcher.before_merge(page.operations)
                self._log.apply(page.operations)
                marker = page.next_marker
        except BackendError as exc:
            self._fail(batch, exc)
            return
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # The invocation itself is ending (Lambda's deadline): the call is abandoned.
                abandoned = CheckpointError(
                    "the checkpoint call was abandoned: the invocation is ending", retryable=True
                )
                self._fail(batch, abandoned)
                raise
            self._fail(batch, _broken_contract(exc))
            return  # the client raised it: a failed call like any other
        except BaseException as exc:  # a custom client broke its contract
            self._fail(batch, _broken_contract(exc))
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit and kin: after settling the batch
            return
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._monitor.state_refreshed()
        if watcher is not None:
            # After the waiters are settled (they run once this yields): a plugin's
            # failure or cancellation cannot leave them hanging.
            await watcher.merged(updates)

    def _revoke(self, batch: Batch) -> None:
        self._logger.warning(
            "checkpoint token withdrawn by the service; ending this invocation PENDING",
            extra={"executionArn": self._arn},
        )
        self.revoked = True
        self._monitor.release()
        self._settle(batch, Suspended)

    def _fail(self, batch: Batch | None, error: BackendError) -> None:
        # The message, not the exception: a record kept by a handler must not pin the
        # exception's traceback (and through it this invocation's loop objects).
        self._logger.error(
            "checkpointing failed: %s", str(error), extra={"executionArn": self._arn}
        )
        self.failure = error
        self._settle(batch, error)

    def _settle(self, batch: Batch | None, error: BaseException | type[BaseException]) -> None:
        waiters = [*(batch.waiters if batch is not None else ()), *self._queue.take_waiters()]
        self._urgent = 0
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error() if isinstance(error, type) else error)

    def _settle_leftovers(self) -> None:
        if self._queue:
            failure: BaseException = self.failure or Suspended()
            self._settle(None, failure)

    def statistics(self) -> dict[str, Any]:
        """Calls made and updates still queued."""
        return {"calls": self.calls, "queued": len(self._queue)}
