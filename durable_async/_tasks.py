"""The tasks of an invocation: which tasks belong to it, and the operation namespace of each.

A durable handler may create tasks any way asyncio allows (``gather``, ``TaskGroup``,
``create_task``, anyio task groups, nested). Two things need to know about all of them:

- *Settling.* No task created inside an invocation may outlive it, and the invocation may
  only suspend once each of them is finished or blocked on a parked durable operation.
- *Identity.* An operation issued from a task other than its context's own gets its ID
  from that task's *namespace*, derived from where the task was created: the creating
  task's namespace, the context that was current, the coroutine's qualified name and how
  many such tasks that creator had made before. Completion order never enters it, so
  replay hands every result to the task that recorded it, whatever order things finish in.

Both rest on a task factory that wraps the loop's own (``eager_task_factory`` included)
for as long as an invocation runs on the loop: a task created while a ``TaskInfo`` is
current gets a ``TaskInfo`` of its own, set in the task's context before it first runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

#: The ``TaskInfo`` of the running task, when it belongs to an invocation.
current_task_info: contextvars.ContextVar[TaskInfo | None] = contextvars.ContextVar(
    "durable_async_task", default=None
)
#: The operation prefix of the current durable context ("" at the root); tasks created
#: under different contexts are counted apart, so a finished child context that is not
#: re-run on replay cannot shift the namespaces of tasks created after it.
current_scope: contextvars.ContextVar[str] = contextvars.ContextVar(
    "durable_async_scope", default=""
)


class TaskRegistry:
    """The live tasks of one invocation."""

    __slots__ = ("_callbacks_context", "_live", "_on_done", "_then")

    def __init__(self) -> None:
        self._live: set[asyncio.Task[Any]] = set()
        #: What to call after the bookkeeping, for tasks whose owner asked (``when_done``).
        self._then: dict[asyncio.Task[Any], Callable[[asyncio.Task[Any]], None]] = {}
        #: One context for every task's done callback instead of a copy of the caller's
        #: each, and one bound method. It marks the callback as the invocation's work
        #: (see ``SuspensionMonitor``): an owner's callback run from it wakes the owner.
        self._callbacks_context = contextvars.Context()
        self._callbacks_context.run(current_task_info.set, TaskInfo(self, "<done callbacks>"))
        self._on_done = self._done

    def add(self, task: asyncio.Task[Any]) -> None:
        """Track ``task`` until it is done."""
        if not task.done():
            self._live.add(task)
            task.add_done_callback(self._on_done, context=self._callbacks_context)
        else:
            _collect_suspension(task)

    def when_done(
        self, task: asyncio.Task[Any], callback: Callable[[asyncio.Task[Any]], None]
    ) -> None:
        """Call ``callback(task)`` once ``task`` is done, like ``add_done_callback``.

        From the registry's own done callback when it tracks the task: a second callback
        would cost the task a list and a tuple, for every branch of a large map.
        """
        if task in self._live:
            self._then[task] = callback
        else:
            task.add_done_callback(callback, context=self._callbacks_context)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._live.discard(task)
        _collect_suspension(task)
        then = self._then.pop(task, None)
        if then is not None:
            then(task)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._live))

    def __contains__(self, task: object) -> bool:
        return task in self._live

    def __len__(self) -> int:
        return len(self._live)


async def cancel_and_settle(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks``, wait until each has ended, and collect what they raised.

    The SDK decided without them (a batch or race is over, the invocation ends), so what a
    task raised on its way out (the suspension signal, when its cleanup called an
    operation) is the SDK's to collect, not asyncio's to report as never retrieved.
    """
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled():
            task.exception()


def collect_outcome(task: asyncio.Future[Any]) -> None:
    """Done callback: mark what a task raised as seen, for tasks whose owner decides on it.

    A batch's or race's branches that finished with the error that ended it (a checkpoint
    error, the suspension) are not looked at once the first is raised, and the wind-down
    may cancel the owner while it settles them; asyncio would log each as "Task exception
    was never retrieved". The owner still reads every outcome it needs from the task.
    """
    if not task.cancelled():
        task.exception()


def _collect_suspension(task: asyncio.Task[Any]) -> None:
    """Mark a task that ended with the suspension signal as retrieved.

    Ending that way is how a branch suspends; asyncio would otherwise log "exception never
    retrieved" for a fire-and-forget task. Any other exception is left for asyncio to report.
    """
    if task.cancelled():
        return
    error = getattr(task, "_exception", None)
    if error is None:
        return
    from durable_async._suspend import Suspended  # here: _suspend imports this module

    if isinstance(error, Suspended):
        task.exception()


class TaskInfo:
    """What the SDK knows of one task of an invocation."""

    __slots__ = ("namespace", "registry", "_spawned")

    def __init__(self, registry: TaskRegistry, namespace: str) -> None:
        self.registry = registry
        #: "" for the handler's task; otherwise a path that names where the task was made.
        self.namespace = namespace
        self._spawned: dict[tuple[str, str], int] = {}

    def spawn(self, coro: object, scope: str) -> TaskInfo:
        """The info of a task this task creates, running ``coro`` under context ``scope``."""
        qualname = getattr(coro, "__qualname__", None) or type(coro).__qualname__
        key = (scope, qualname)
        count = self._spawned.get(key, 0) + 1
        self._spawned[key] = count
        return TaskInfo(self.registry, f"{self.namespace}/{scope}:{qualname}#{count}")


TaskFactory = Callable[..., "asyncio.Future[Any]"]


def _prepare(
    coro: object, context: contextvars.Context | None
) -> tuple[contextvars.Context | None, TaskInfo | None]:
    """The context a new task runs in, and its info if it is created inside an invocation."""
    parent = current_task_info.get() if context is None else context.get(current_task_info)
    if parent is None:
        return context, None
    # A copy, so that a context the caller passes in is not changed under it.
    context = context.copy() if context is not None else contextvars.copy_context()
    info = parent.spawn(coro, context.get(current_scope, ""))
    context.run(current_task_info.set, info)
    return context, info


def _register(task: object, info: TaskInfo | None) -> None:
    if info is not None and isinstance(task, asyncio.Task):
        info.registry.add(task)


class _TrackingFactory:
    """Wraps a loop's task factory; tasks created inside an invocation are registered."""

    __slots__ = ("previous",)

    def __init__(self, previous: TaskFactory | None) -> None:
        self.previous = previous

    def __call__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        context, info = _prepare(coro, kwargs.pop("context", None))
        if context is not None:
            kwargs["context"] = context
        if self.previous is not None:
            task = self.previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        _register(task, info)
        return task


class _TrackingConstructor:
    """Wraps the task class of an eager task factory.

    The loop keeps an eager factory made by ``asyncio.create_eager_task_factory``, so
    libraries that recognise one (anyio starts its tasks lazily under it, reading the task
    class from the factory) still do.
    """

    __slots__ = ("constructor",)

    def __init__(self, constructor: Callable[..., asyncio.Task[Any]]) -> None:
        self.constructor = constructor

    def __call__(self, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> asyncio.Task[Any]:
        context, info = _prepare(coro, kwargs.pop("context", None))
        task = self.constructor(coro, context=context, **kwargs)
        _register(task, info)
        return task


def _eager_task_class(factory: object) -> Callable[..., asyncio.Task[Any]] | None:
    """The task class of an eager factory made by ``create_eager_task_factory``, if it is one."""
    eager = getattr(asyncio, "eager_task_factory", None)
    code = getattr(factory, "__code__", None)
    closure = getattr(factory, "__closure__", None)
    if eager is None or code is not eager.__code__ or not closure:
        return None
    return closure[0].cell_contents  # type: ignore[no-any-return]


class _Installation:
    __slots__ = ("installed", "previous", "users")

    def __init__(self, previous: TaskFactory | None, installed: TaskFactory) -> None:
        self.previous = previous
        self.installed = installed
        self.users = 0


_installations: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Installation] = (
    weakref.WeakKeyDictionary()
)


def install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    """Track tasks on ``loop`` (one more invocation running on it)."""
    installation = _installations.get(loop)
    if installation is None or loop.get_task_factory() is not installation.installed:
        previous: TaskFactory | None = loop.get_task_factory()
        task_class = _eager_task_class(previous)
        installed: TaskFactory
        if task_class is not None:
            make_eager = asyncio.create_eager_task_factory  # type: ignore[attr-defined,unused-ignore]
            installed = make_eager(_TrackingConstructor(task_class))
        else:
            installed = _TrackingFactory(previous)
        loop.set_task_factory(installed)  # type: ignore[arg-type]
        installation = _installations[loop] = _Installation(previous, installed)
    installation.users += 1


def uninstall_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    """One invocation fewer on ``loop``; the last one puts the loop's own factory back."""
    installation = _installations.get(loop)
    if installation is None:
        return
    installation.users -= 1
    if installation.users <= 0:
        del _installations[loop]
        if loop.get_task_factory() is installation.installed:
            loop.set_task_factory(installation.previous)
