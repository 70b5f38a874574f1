"""``durable_execution``: the decorator that makes an ``async def`` a Lambda handler.

Lambda's Python runtime calls handlers synchronously. The decorated handler runs each
invocation on one event loop kept for the life of the process, so clients created on it
(the SDK's aiobotocore client, the user's own) survive across warm invocations. Inside an
already running loop (an aiohttp handler, a test) use ``await handler.invoke_async(...)``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import inspect
import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from durable_async._client.base import DurableExecutionClient
from durable_async._context import DurableContext
from durable_async._errors import ValidationError
from durable_async._invocation import Invocation
from durable_async._operations._common import is_async_callable
from durable_async._tasks import install_task_factory

if TYPE_CHECKING:
    import anyio

R = TypeVar("R")
T = TypeVar("T")

#: Worker threads shared by sync step bodies of all invocations on a loop.
DEFAULT_MAX_THREADS = 32
_DEFAULT_LOGGER = logging.getLogger("durable_async.handler")


class _LoopResources:
    """The SDK-owned client and thread limiters of one event loop."""

    __slots__ = ("client", "limiters")

    def __init__(self) -> None:
        self.client: DurableExecutionClient | None = None
        #: One limiter per thread bound, shared by the handlers that ask for that bound.
        self.limiters: dict[int, anyio.CapacityLimiter] = {}

    def limiter(self, max_threads: int) -> anyio.CapacityLimiter:
        limiter = self.limiters.get(max_threads)
        if limiter is None:
            # Only a plain (thread-run) step gets here: async-only handlers never load anyio.
            import anyio

            limiter = self.limiters[max_threads] = anyio.CapacityLimiter(max_threads)
        return limiter


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopResources] = (
    weakref.WeakKeyDictionary()
)
_runner: asyncio.Runner | None = None


def _loop_resources() -> _LoopResources:
    loop = asyncio.get_running_loop()
    resources = _per_loop.get(loop)
    if resources is None:
        resources = _per_loop[loop] = _LoopResources()
    return resources


def _default_client(resources: _LoopResources) -> DurableExecutionClient:
    if resources.client is None:
        from durable_async._client.aiobotocore import AioBotocoreClient

        resources.client = AioBotocoreClient()
    return resources.client


def _prepare_default_client() -> None:
    """In Lambda, build what the default client needs while the handler module loads.

    Lambda's INIT phase (module import) runs before the first invocation, so imports and
    model loading done here leave the first invocation only opening the client on its
    loop. Outside Lambda (tests, tools) nothing is done: they may never need the client.
    """
    from durable_async._client.aiobotocore import prepare

    prepare()


def process_runner() -> asyncio.Runner:
    """The process's event-loop runner, created on first use and kept for warm starts."""
    global _runner
    if _runner is None:
        _runner = asyncio.Runner()
        atexit.register(close_process_runner)
        # The SDK owns this loop, so its task tracking stays installed for the process's
        # life instead of being put in and taken out around every warm invocation.
        install_task_factory(_runner.get_loop())
    return _runner


def run_on_process_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the process's loop, as one task in a copy of the context.

    Not ``asyncio.Runner.run``: it installs and restores a SIGINT handler around every call,
    which costs about half the fixed cost of a warm invocation, for a signal Lambda never
    sends. Without it, Ctrl-C in a local run raises ``KeyboardInterrupt`` where the loop is;
    the invocation's task is then cancelled and settled before the interrupt propagates, so
    nothing of it is left on the loop for the next call.
    """
    loop = process_runner().get_loop()
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        raise


def close_process_runner() -> None:
    """Close the SDK's client on the process loop, then the loop (at interpreter exit)."""
    global _runner
    runner, _runner = _runner, None
    if runner is None:
        return
    try:
        resources = _per_loop.get(runner.get_loop())
        if resources is not None and resources.client is not None:
            runner.run(resources.client.aclose())
    finally:
        runner.close()


def _load_plugins(plugins: Iterable[object] | None) -> tuple[object, ...]:
    """The handler's plugins; the plugin machinery is imported only when there are some."""
    if plugins is None and not os.environ.get("DURABLE_EXECUTION_PLUGINS"):
        return ()
    from durable_async._plugin_loading import load_plugins

    return load_plugins(plugins)


class DurableHandler(Generic[R]):
    """A durable Lambda handler: call it like a sync handler, or ``await invoke_async``."""

    __name__: str
    __qualname__: str

    def __init__(
        self,
        func: Callable[[Any, DurableContext], Awaitable[R]],
        *,
        client: DurableExecutionClient | None = None,
        logger: logging.Logger | None = None,
        max_threads: int = DEFAULT_MAX_THREADS,
        plugins: Iterable[object] | None = None,
        pipelined: bool = False,
    ) -> None:
        if not isinstance(pipelined, bool):
            msg = f"pipelined must be True or False, got: {pipelined!r}"
            raise ValidationError(msg)
        # A decorator that wraps the coroutine function in a plain one (functools.wraps, as
        # Powertools' @logger.inject_lambda_context does) still returns its coroutine.
        if not (is_async_callable(func) or is_async_callable(inspect.unwrap(func))):
            msg = (
                f"durable_execution wraps an `async def handler(event, ctx)`; "
                f"{getattr(func, '__qualname__', func)!r} is not a coroutine function"
            )
            raise TypeError(msg)
        functools.update_wrapper(self, func)
        self.func = func
        self._client = client
        self._logger = logger or _DEFAULT_LOGGER
        self._max_threads = max_threads
        self._plugins = _load_plugins(plugins)
        self._pipelined = pipelined
        if client is None and os.environ.get("AWS_LAMBDA_RUNTIME_API"):
            _prepare_default_client()

    def __call__(self, event: Any, lambda_context: Any = None) -> dict[str, Any]:
        """Run one invocation to completion on the process's persistent loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            msg = (
                "a durable handler was called synchronously inside a running event loop; "
                "use `await handler.invoke_async(event, lambda_context)` there"
            )
            raise RuntimeError(msg)
        return run_on_process_loop(self.invoke_async(event, lambda_context))

    async def invoke_async(
        self,
        event: Any,
        lambda_context: Any = None,
        *,
        client: DurableExecutionClient | None = None,
    ) -> dict[str, Any]:
        """Run one invocation on the running loop and return the invocation output."""
        resources = _loop_resources()
        backend = client or self._client or _default_client(resources)
        invocation = Invocation(
            self.func,
            client=backend,
            logger=self._logger,
            limiter=functools.partial(resources.limiter, self._max_threads),
            plugins=self._plugins,
            pipelined=self._pipelined,
        )
        return await invocation.run(event, lambda_context)


@overload
def durable_execution(
    func: Callable[[Any, DurableContext], Awaitable[R]], /
) -> DurableHandler[R]: ...


@overload
def durable_execution(
    *,
    client: DurableExecutionClient | None = None,
    logger: logging.Logger | None = None,
    max_threads: int = DEFAULT_MAX_THREADS,
    plugins: Iterable[object] | None = None,
    pipelined: bool = False,
) -> Callable[[Callable[[Any, DurableContext], Awaitable[R]]], DurableHandler[R]]: ...


def durable_execution(
    func: Callable[[Any, DurableContext], Awaitable[R]] | None = None,
    /,
    *,
    client: DurableExecutionClient | None = None,
    logger: logging.Logger | None = None,
    max_threads: int = DEFAULT_MAX_THREADS,
    plugins: Iterable[object] | None = None,
    pipelined: bool = False,
) -> Any:
    """Turn ``async def handler(event, ctx)`` into a durable Lambda handler.

    ``client`` replaces the default aiobotocore backend (e.g. with ``MemoryBackend``);
    ``logger`` is what ``ctx.logger`` writes to; ``max_threads`` bounds the worker threads
    that run plain (non-async) step bodies. ``plugins`` are instrumentation plugins or
    plugin factories (see ``DurableInstrumentationPlugin``); those named in the
    ``DURABLE_EXECUTION_PLUGINS`` environment variable are added after them.
    ``pipelined=True`` lets at-least-once steps go on before their results are recorded
    (fewer round trips than steps; a crash can re-run more of them: see the README);
    ``StepConfig(pipelined=...)`` overrides it per step.
    """

    def wrap(f: Callable[[Any, DurableContext], Awaitable[R]]) -> DurableHandler[R]:
        return DurableHandler(
            f,
            client=client,
            logger=logger,
            max_threads=max_threads,
            plugins=plugins,
            pipelined=pipelined,
        )

    return wrap(func) if func is not None else wrap
