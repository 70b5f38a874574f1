"""Suspension: ending an invocation exactly when nothing belonging to it can move.

An operation that cannot finish in this invocation (a durable wait, a retry scheduled for
later, a callback nobody has answered yet) *parks*. A park names the state it waits for:
when a checkpoint response shows that state (a sibling's checkpoint came back with the
callback answered, the timer fired or the retry due), the park ends and the branch carries
on in this invocation instead of the next.

The invocation suspends when every task that belongs to it (see ``_tasks``) is finished,
parked, or waiting on its siblings: joining tasks (``await task``, ``gather``, ``TaskGroup``
and anyio task-group exits, ``asyncio.wait``) or blocked on an asyncio synchronisation
primitive (``Event``, ``Lock``, ``Condition``, ``Semaphore``, ``Queue``, ``Barrier``). A
task awaiting anything else (a timer, a thread, the network, a checkpoint), or running a
step body whatever it awaits, is making progress, and the invocation waits for it. The
decision is exact, not a count of quiet loop turns: it is re-examined whenever the task
found blocking it moves, by a done callback on the future that task awaits, so nothing
polls and nothing runs while no operation is parked. Releasing parks by raising
``Suspended`` keeps suspension out of ``except Exception``.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType
from typing import Any

from durable_async._identity import OperationIdentity
from durable_async._tasks import TaskRegistry, current_task_info


class Suspended(BaseException):
    """The invocation ends ``PENDING``; the service re-invokes it when work is due."""


#: Returned by ``_blocker_of`` for a task that is runnable right now.
_READY = object()
#: ... and for a task whose state cannot be read (a foreign ``Task`` class): the deadline
#: decides then.
_OPAQUE = object()
_NO_CONTEXT = contextvars.Context()


def _internal_waits() -> frozenset[CodeType]:
    """Code of the coroutines whose waits only sibling tasks can end.

    anyio's own primitives count once its asyncio backend is loaded (it is imported when
    first used, so a handler that uses anyio task groups has loaded it).
    """
    global _internal, _internal_with_anyio
    anyio_backend = sys.modules.get("anyio._backends._asyncio")
    if _internal is not None and _internal_with_anyio == (anyio_backend is not None):
        return _internal
    candidates: list[Any] = [
        asyncio.TaskGroup.__aexit__,
        getattr(asyncio.TaskGroup, "_aexit", None),
        asyncio.Event.wait,
        asyncio.Condition.wait,
        asyncio.Lock.acquire,
        asyncio.Semaphore.acquire,
        asyncio.Queue.get,
        asyncio.Queue.put,
        asyncio.Barrier.wait,
    ]
    if anyio_backend is not None:
        for owner, method in (
            ("TaskGroup", "__aexit__"),
            ("Event", "wait"),
            ("Lock", "acquire"),
            ("Semaphore", "acquire"),
        ):
            candidates.append(getattr(getattr(anyio_backend, owner, None), method, None))
    _internal = frozenset(f.__code__ for f in candidates if hasattr(f, "__code__"))
    _internal_with_anyio = anyio_backend is not None
    return _internal


_internal: frozenset[CodeType] | None = None
_internal_with_anyio = False
_GATHERING: type[Any] | None = getattr(asyncio.tasks, "_GatheringFuture", None)


def _innermost(task: asyncio.Task[Any]) -> Any:
    """The innermost coroutine (or generator) ``task`` is suspended in."""
    awaitable: Any = task.get_coro()
    innermost = None
    while awaitable is not None and (
        hasattr(awaitable, "cr_code") or hasattr(awaitable, "gi_code")
    ):
        innermost = awaitable
        awaitable = awaitable.cr_await if hasattr(awaitable, "cr_await") else awaitable.gi_yieldfrom
    return innermost


def _code_of(coroutine: Any) -> CodeType | None:
    return getattr(coroutine, "cr_code", None) or getattr(coroutine, "gi_code", None)


#: Joins over futures that may not all be tasks of the invocation, by the local variable
#: that holds them: ``asyncio.wait``'s ``fs``, and ``asyncio.wait_for``'s ``fut`` (which
#: waits on a future of its own on Python 3.11).
_JOINS = {
    code: local
    for function, local in (
        (getattr(asyncio.tasks, "_wait", None), "fs"),
        (asyncio.wait_for, "fut"),
    )
    if (code := getattr(function, "__code__", None)) is not None
}


class _Park:
    __slots__ = ("identity", "ready", "task")

    def __init__(
        self,
        ready: Callable[[], bool],
        identity: OperationIdentity,
        task: asyncio.Task[Any] | None,
    ) -> None:
        self.ready = ready
        self.identity = identity
        self.task = task


class SuspensionMonitor:
    """Parked operations of one invocation, and the decision to suspend it."""

    __slots__ = (
        "_bodies",
        "_check_pending",
        "_closed",
        "_drained",
        "_last_blocker",
        "_parked",
        "_released",
        "_released_tasks",
        "_tasks",
        "_watched",
        "quiescent",
        "root",
        "suspended",
    )

    def __init__(self, tasks: TaskRegistry) -> None:
        self._tasks = tasks
        self._parked: dict[asyncio.Future[None], _Park] = {}
        self._released = False
        self._closed = False
        #: Resolved once the invocation has suspended because nothing of it can move (a
        #: future, not a task waiting on an event: one task fewer per invocation).
        self.quiescent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drained = asyncio.Event()
        #: The handler's task: once it has ended, there is nothing left to suspend.
        self.root: asyncio.Task[Any] | None = None
        #: Tasks whose own parks were ended by suspension.
        self._released_tasks: set[asyncio.Task[Any]] = set()
        self._check_pending = False
        self._watched: asyncio.Future[Any] | None = None
        self._last_blocker: asyncio.Task[Any] | None = None
        #: Tasks running user code of an operation (a step body, a condition check), which
        #: is real work whatever it awaits.
        self._bodies: dict[asyncio.Task[Any], int] = {}
        #: Operations whose parks were ended by suspension, in order.
        self.suspended: list[OperationIdentity] = []

    @property
    def released(self) -> bool:
        """Whether the invocation has started to suspend."""
        return self._released

    @property
    def closed(self) -> bool:
        """Whether new operations are refused (suspending, or the handler has ended)."""
        return self._closed

    @property
    def parked(self) -> int:
        """How many operations wait for the service right now."""
        return len(self._parked)

    @contextmanager
    def running_body(self) -> Iterator[None]:
        """Mark the current task as running a step body or condition check."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        bodies = self._bodies
        bodies[task] = bodies.get(task, 0) + 1
        try:
            yield
        finally:
            depth = bodies.pop(task) - 1
            if depth:
                bodies[task] = depth

    def close(self) -> None:
        """Refuse new operations from now on (they raise ``Suspended``)."""
        self._closed = True

    async def park_until(self, ready: Callable[[], bool], identity: OperationIdentity) -> None:
        """Return once ``ready()`` holds after a state refresh; or raise ``Suspended``."""
        if not ready():
            await self._wait(ready, identity)

    async def _wait(self, ready: Callable[[], bool], identity: OperationIdentity) -> None:
        if self._released:
            self.suspended.append(identity)
            raise Suspended
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked[future] = _Park(ready, identity, asyncio.current_task())
        self._request_check()
        try:
            await future
        finally:
            del self._parked[future]

    def state_refreshed(self) -> None:
        """Wake the parks whose awaited state has arrived (after a checkpoint response)."""
        for future, park in self._parked.items():
            if not future.done() and park.ready():
                future.set_result(None)

    async def wait_drained(self) -> None:
        """After ``release``: return once no task is busy any more.

        What is left then waits on siblings that ended with the suspension (an event
        never set, a queue never fed) and can only be cancelled.
        """
        await self._drained.wait()

    def release(self) -> None:
        """Make every parked operation, now and later, raise ``Suspended``."""
        if self._released:
            return
        self._released = self._closed = True
        for future, park in self._parked.items():
            if not future.done():
                self.suspended.append(park.identity)
                if park.task is not None:
                    self._released_tasks.add(park.task)
                future.set_exception(Suspended())
        self._request_check()

    def swallowed_by_current_task(self) -> bool:
        """Whether the running task had a park ended by suspension and yet goes on."""
        task = asyncio.current_task()
        return task is not None and task in self._released_tasks

    # -- the quiescence decision ----------------------------------------------------

    def _request_check(self) -> None:
        if not self._check_pending and not self._drained.is_set():
            self._check_pending = True
            # An empty context: the check belongs to no task of the invocation.
            asyncio.get_running_loop().call_soon(self._check, context=_NO_CONTEXT)

    def _check(self) -> None:
        self._check_pending = False
        if not self._released and (
            not self._parked or (self.root is not None and self.root.done())
        ):
            return  # nothing parked, or the handler has ended: nothing to suspend
        blocker = self._find_blocker()
        if blocker is None:
            if self._released:
                self._drained.set()
            else:
                self.release()
                if not self.quiescent.done():
                    self.quiescent.set_result(None)
        elif blocker is _READY:
            self._request_check()
        elif isinstance(blocker, asyncio.Future) and blocker is not self._watched:
            self._watched = blocker
            blocker.add_done_callback(self._on_wake, context=_NO_CONTEXT)

    def _on_wake(self, future: asyncio.Future[Any]) -> None:
        if future is self._watched:
            self._watched = None
            self._request_check()

    def _find_blocker(self) -> Any:
        """Something that keeps the invocation from suspending, or ``None``."""
        last = self._last_blocker
        if last is not None and last in self._tasks:
            blocker = self._blocker_of(last)
            if blocker is not None:
                return blocker
        for task in self._tasks:
            blocker = self._blocker_of(task)
            if blocker is not None:
                self._last_blocker = task
                return blocker
        self._last_blocker = None
        if self._callbacks_pending():
            return _READY
        return None

    def _callbacks_pending(self) -> bool:
        """Whether a callback of the invocation waits in the loop's ready queue.

        A future that finished a moment ago (a branch's task) wakes its joiner through such
        a callback (``asyncio.wait``'s, ``gather``'s, a task group's): until it has run,
        the joiner only looks blocked. Loops without a readable queue (uvloop) skip this.
        """
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        if not ready:
            return False
        for handle in ready:
            context = getattr(handle, "_context", None)
            if context is None or handle.cancelled():
                continue
            info = context.get(current_task_info)
            if info is not None and info.registry is self._tasks:
                return True
        return False

    def _blocker_of(self, task: asyncio.Task[Any]) -> Any:
        """What ``task`` is busy with, or ``None`` if it is done, parked or waits on siblings."""
        if task.done():
            return None
        waiter: Any = getattr(task, "_fut_waiter", _OPAQUE)
        if waiter is _OPAQUE:
            return _OPAQUE
        if waiter is None or waiter.done():
            return _READY
        if waiter in self._parked:
            return None
        if task in self._bodies:
            return waiter
        if isinstance(waiter, asyncio.Task):
            return None if waiter in self._tasks else waiter
        if _GATHERING is not None and isinstance(waiter, _GATHERING):
            return self._outside(getattr(waiter, "_children", ()))
        innermost = _innermost(task)
        code = _code_of(innermost)
        local = _JOINS.get(code) if code is not None else None
        if local is not None:
            frame = getattr(innermost, "cr_frame", None)
            joined = frame.f_locals.get(local) if frame is not None else None
            if isinstance(joined, asyncio.Future):
                joined = (joined,)
            if joined is None:
                return waiter
            return self._outside(joined)
        if code in _internal_waits():
            return None
        return waiter

    def _outside(self, futures: Any) -> Any:
        """A pending future among ``futures`` that is not a task of the invocation."""
        for future in futures:
            if (
                isinstance(future, asyncio.Future)
                and not future.done()
                and not (isinstance(future, asyncio.Task) and future in self._tasks)
            ):
                return future
        return None
