"""Invocation lifecycle: nothing outlives an invocation; the sync entry; the public API."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support import actions, invoke_once, start

import durable_async
from durable_async import (
    AioBotocoreClient,
    DurableContext,
    StepContext,
    current_context,
    durable_execution,
)
from durable_async._entry import _LoopResources, _per_loop, close_process_runner, process_runner
from durable_async._wire.models import CheckpointRequest
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend


async def run_counting_leftovers(
    handler: Any,
) -> tuple[dict[str, Any], set[asyncio.Task[Any]], MemoryBackend]:
    backend = MemoryBackend()
    arn = start(backend)
    before = asyncio.all_tasks()
    output = await invoke_once(handler, backend, arn)
    leftovers = {t for t in asyncio.all_tasks() - before if not t.done()}
    return output, leftovers, backend


@pytest.mark.anyio
async def test_no_task_left_after_success() -> None:
    async def body(_: StepContext, i: int) -> int:
        await asyncio.sleep(0)
        return i

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return sum(await asyncio.gather(*(ctx.step(body, i) for i in range(10))))

    output, leftovers, _ = await run_counting_leftovers(handler)
    assert output == {"Status": "SUCCEEDED", "Result": "45"}
    assert leftovers == set()


@pytest.mark.anyio
async def test_unawaited_step_task_does_not_outlive_the_invocation() -> None:
    entered = asyncio.Event()
    never = asyncio.Event()
    cancelled: list[bool] = []

    async def orphan(_: StepContext) -> None:
        entered.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        asyncio.create_task(ctx.step(orphan, name="orphan"))  # noqa: RUF006 - on purpose
        await entered.wait()
        return "returned without awaiting"

    output, leftovers, _ = await run_counting_leftovers(handler)
    assert output == {"Status": "SUCCEEDED", "Result": '"returned without awaiting"'}
    assert leftovers == set()
    assert cancelled == [True]


@pytest.mark.anyio
async def test_unawaited_step_task_created_just_before_returning() -> None:
    runs: list[int] = []

    async def orphan(_: StepContext) -> None:
        runs.append(1)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        asyncio.create_task(ctx.step(orphan, name="orphan"))  # noqa: RUF006 - on purpose
        return "done"

    output, leftovers, _ = await run_counting_leftovers(handler)
    assert output["Status"] == "SUCCEEDED"
    assert leftovers == set()


@pytest.mark.anyio
async def test_branch_blocked_forever_is_cancelled_when_a_sibling_suspends() -> None:
    never = asyncio.Event()
    reached: list[str] = []

    async def quick(_: StepContext) -> str:
        return "quick"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        async def branch() -> None:
            await ctx.step(quick, name="before")
            await never.wait()  # blocked forever, outside any step body
            reached.append("after")
            await ctx.step(quick, name="after")

        await asyncio.gather(branch(), ctx.wait(seconds=30))

    output, leftovers, backend = await run_counting_leftovers(handler)
    assert output == {"Status": "PENDING"}
    assert leftovers == set()
    assert reached == []
    assert ("STEP", "SUCCEED", "before") in actions(backend)
    assert ("WAIT", "START", None) in actions(backend)


@pytest.mark.anyio
async def test_detached_branch_blocked_forever_is_cancelled_when_the_handler_suspends() -> None:
    never = asyncio.Event()

    async def quick(_: StepContext) -> str:
        return "quick"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        async def branch() -> None:
            await ctx.step(quick, name="before")
            await never.wait()

        task = asyncio.create_task(branch())
        await ctx.wait(seconds=30)
        await task

    output, leftovers, _ = await run_counting_leftovers(handler)
    assert output == {"Status": "PENDING"}
    assert leftovers == set()


@pytest.mark.anyio
async def test_no_task_left_after_failure_and_retry_suspension() -> None:
    never = asyncio.Event()

    def flaky(_: StepContext) -> None:
        raise RuntimeError("try later")

    async def quick(_: StepContext) -> int:
        return 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        async def blocked() -> None:
            await ctx.step(quick)
            await never.wait()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(blocked())
            tg.create_task(ctx.step(flaky))

    output, leftovers, backend = await run_counting_leftovers(handler)
    assert output == {"Status": "PENDING"}
    assert leftovers == set()
    assert ("STEP", "RETRY", "flaky") in actions(backend)


@pytest.mark.anyio
async def test_current_context_inside_and_outside() -> None:
    seen: list[DurableContext] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        seen.append(current_context())
        assert current_context() is ctx
        return ctx.execution_arn

    result = await LocalRunner(handler).run()
    assert result.result == result.arn
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match="not inside a durable handler"):
        current_context()


@pytest.mark.anyio
async def test_lambda_context_is_passed_through() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    lambda_ctx = FakeLambdaContext(aws_request_id="req-1")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return ctx.lambda_context.aws_request_id  # type: ignore[no-any-return]

    event = LocalRunner(handler, backend).event(arn)
    output = await handler.invoke_async(event, lambda_ctx, client=backend)
    assert output == {"Status": "SUCCEEDED", "Result": '"req-1"'}


# -- the sync entry point ---------------------------------------------------------------


def test_sync_entry_runs_from_plain_code_on_one_persistent_loop() -> None:
    backend = MemoryBackend()
    loops: list[asyncio.AbstractEventLoop] = []

    async def body(_: StepContext, x: int) -> int:
        loops.append(asyncio.get_running_loop())
        return x + 1

    @durable_execution(client=backend)
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(body, event["x"])

    runner = LocalRunner(handler, backend)
    first = handler(runner.event(backend.start_execution('{"x": 1}')), FakeLambdaContext())
    second = handler(runner.event(backend.start_execution('{"x": 41}')), FakeLambdaContext())
    assert first == {"Status": "SUCCEEDED", "Result": "2"}
    assert second == {"Status": "SUCCEEDED", "Result": "42"}
    assert len(loops) == 2
    assert loops[0] is loops[1]  # warm invocations share the process's loop
    assert not loops[0].is_closed()


@pytest.mark.anyio
async def test_sync_entry_refuses_to_run_inside_a_running_loop() -> None:
    backend = MemoryBackend()
    ran: list[bool] = []

    @durable_execution(client=backend)
    async def handler(event: Any, ctx: DurableContext) -> None:
        ran.append(True)

    event = LocalRunner(handler, backend).event(start(backend))
    with pytest.raises(RuntimeError, match="invoke_async"):
        handler(event, FakeLambdaContext())
    assert ran == []
    assert backend.checkpoint_calls == []


def test_decorator_keeps_the_function_metadata() -> None:
    async def my_handler(event: Any, ctx: DurableContext) -> None:
        """Docs of my handler."""

    handler = durable_execution(my_handler)
    assert handler.__name__ == "my_handler"
    assert handler.__doc__ == "Docs of my handler."
    assert handler.func is my_handler


# -- the public API ---------------------------------------------------------------------

EXPECTED_ALL = [
    "BatchCompletionError",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionStatus",
    "complete_batch",
    "continue_batch",
    "PLUGIN_ENTRY_POINT_GROUP",
    "PLUGIN_ENVIRONMENT_VARIABLE",
    "DurableInstrumentationPlugin",
    "DurableInstrumentationPluginFactory",
    "InvocationEndInfo",
    "InvocationStartInfo",
    "InvocationStatus",
    "OperationChangeInfo",
    "OperationEndInfo",
    "OperationInfo",
    "OperationStartInfo",
    "PluginLoadError",
    "UserFunctionEndInfo",
    "UserFunctionOutcome",
    "UserFunctionStartInfo",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "AioBotocoreClient",
    "BackendError",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "Callback",
    "CallbackConfig",
    "CallbackError",
    "CallbackFailedError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ChildConfig",
    "ChildContextError",
    "CompletionConfig",
    "CompletionReason",
    "DurableContext",
    "DurableError",
    "DurableExecutionClient",
    "DurableHandler",
    "DurableLogFilter",
    "DurableLogger",
    "DurableOperationError",
    "Duration",
    "ExecutionStateError",
    "ExtendedTypeSerDes",
    "InvalidEventError",
    "InvocationTimeoutError",
    "InvokeConfig",
    "InvokeError",
    "JitterStrategy",
    "JsonSerDes",
    "LinearRetryStrategyConfig",
    "MapConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "ParallelBranch",
    "ParallelConfig",
    "PassThroughSerDes",
    "PayloadTooLargeError",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategyConfig",
    "SerDes",
    "SerDesContext",
    "SerDesError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "UnawaitedOperationError",
    "ValidationError",
    "WaitForCallbackConfig",
    "WaitForConditionCheckContext",
    "WaitForConditionDecision",
    "WaitForConditionError",
    "WaitStrategyConfig",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "create_wait_strategy",
    "current_context",
    "durable_execution",
]


def test_public_names_are_exactly_all() -> None:
    assert sorted(durable_async.__all__) == sorted(EXPECTED_ALL)
    assert len(set(durable_async.__all__)) == len(durable_async.__all__)
    for name in EXPECTED_ALL:  # resolves the names the package loads on first use too
        assert getattr(durable_async, name) is not None
    public = {
        name
        for name, value in vars(durable_async).items()
        if not name.startswith("_") and type(value) is not type(durable_async)
    }
    assert public == set(EXPECTED_ALL)
    for name in EXPECTED_ALL:
        assert getattr(durable_async, name) is not None


def test_public_exceptions_report_the_package_as_module() -> None:
    for name in EXPECTED_ALL:
        value = getattr(durable_async, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert value.__module__ == "durable_async", name
            assert issubclass(value, durable_async.DurableError), name


@pytest.mark.anyio
async def test_cancelling_the_invocation_cancels_its_tasks() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    entered = asyncio.Event()
    never = asyncio.Event()

    async def slow(_: StepContext) -> None:
        entered.set()
        await never.wait()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await asyncio.gather(ctx.step(slow, name="a"), ctx.step(slow, name="b"))

    before = asyncio.all_tasks()
    invocation = asyncio.create_task(invoke_once(handler, backend, arn))
    await entered.wait()
    invocation.cancel()
    with pytest.raises(asyncio.CancelledError):
        await invocation
    leftovers = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert leftovers == set()


def test_a_plain_function_is_refused_at_decoration() -> None:
    def sync_handler(event: Any, ctx: DurableContext) -> str:
        return "blocking"

    with pytest.raises(TypeError, match="async def"):
        durable_execution(sync_handler)  # type: ignore[arg-type]


def test_closing_the_process_runner_closes_the_sdk_client_then_the_loop() -> None:
    closed: list[bool] = []

    class RecordingBackend(MemoryBackend):
        async def aclose(self) -> None:
            closed.append(True)

    loop = process_runner().get_loop()
    resources = _loop_resources_of(loop)
    resources.client = RecordingBackend()
    close_process_runner()
    assert closed == [True]
    assert loop.is_closed()
    assert process_runner().get_loop() is not loop  # a later invocation gets a new loop


def _loop_resources_of(loop: asyncio.AbstractEventLoop) -> _LoopResources:
    resources = _per_loop.get(loop)
    if resources is None:
        resources = _per_loop[loop] = _LoopResources()
    return resources


def test_default_client_does_not_keep_finished_loops_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No region configured: the default client fails at once, without network traffic,
    # but only after it has recorded the loop it runs on.
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    async def body(step: StepContext) -> int:  # async: no worker thread holds the loop
        return 1

    @durable_execution  # the SDK's own default client
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(body, name="s")

    backend = MemoryBackend()
    event = LocalRunner(handler, backend).event(start(backend))
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        with contextlib.suppress(Exception):
            await handler.invoke_async(event, FakeLambdaContext())

    asyncio.run(main())
    gc.collect()
    assert loops[0]() is None


class _FakeLambda:
    async def checkpoint_durable_execution(self, **kwargs: Any) -> dict[str, Any]:
        return {"CheckpointToken": "next"}


class _Session:
    """A user-supplied session whose client takes a moment to open (as a real one does)."""

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        @contextlib.asynccontextmanager
        async def client() -> AsyncIterator[_FakeLambda]:
            await asyncio.sleep(0)  # one scheduling point, not a timed sleep
            yield _FakeLambda()

        return client()


def test_a_closed_client_reopens_on_a_new_loop_for_concurrent_first_calls() -> None:
    """After ``aclose`` on one loop, two calls racing to open the client on a new loop
    must not trip over the old loop's opening lock (a lock belongs to its loop)."""
    client = AioBotocoreClient(session=_Session())
    request = CheckpointRequest("arn:x", "token", ())
    log = logging.getLogger(__name__)

    async def use() -> None:
        await asyncio.gather(client.checkpoint(request, log), client.checkpoint(request, log))
        await client.aclose()

    asyncio.run(use())
    asyncio.run(use())
