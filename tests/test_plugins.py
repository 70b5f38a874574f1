"""Instrumentation plugins: which hooks fire, in what order, and what a failing one costs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import pytest
from support import invoke_once, start

import durable_async._plugins as plugins_module
from durable_async import (
    PLUGIN_ENTRY_POINT_GROUP,
    PLUGIN_ENVIRONMENT_VARIABLE,
    DurableContext,
    DurableInstrumentationPlugin,
    Duration,
    InvocationEndInfo,
    InvocationStartInfo,
    InvocationStatus,
    OperationEndInfo,
    OperationStartInfo,
    OperationStatus,
    OperationType,
    PluginLoadError,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    UserFunctionEndInfo,
    UserFunctionOutcome,
    UserFunctionStartInfo,
    ValidationError,
    WaitForConditionDecision,
    create_retry_strategy,
    current_context,
    durable_execution,
)
from durable_async._plugin_types import HOOK_NAMES
from durable_async._tasks import cancel_and_settle
from durable_async.testing import LocalRunner, MemoryBackend

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_env_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGIN_ENVIRONMENT_VARIABLE, raising=False)


class Recorder(DurableInstrumentationPlugin):
    """Records every hook as a compact tuple."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.events.append(("invocation-start", info.is_first_invocation))

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.events.append(("invocation-end", info.status))

    def on_operation_start(self, info: OperationStartInfo) -> None:
        self.events.append(("op-start", info.name, info.attempt, info.is_replayed))

    def on_operation_end(self, info: OperationEndInfo) -> None:
        error = info.error.message if info.error else None
        self.events.append(("op-end", info.name, info.status, info.attempt, error))

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        self.events.append(("attempt-start", info.name, info.attempt))

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        self.events.append(("attempt-end", info.name, info.attempt, info.outcome))


async def flaky(step: StepContext) -> str:
    if step.attempt < 2:
        raise RuntimeError(f"attempt {step.attempt} failed")
    return "ok"


RETRY_ONCE = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_seconds(1))
    )
)


async def test_step_with_a_retry_reports_attempts_and_one_end() -> None:
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(flaky, name="flaky", config=RETRY_ONCE)

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == "ok"
    assert result.invocations == 2
    assert recorder.events == [
        ("invocation-start", True),
        ("op-start", "flaky", 1, False),
        ("attempt-start", "flaky", 1),
        ("attempt-end", "flaky", 1, UserFunctionOutcome.FAILED),
        ("invocation-end", InvocationStatus.PENDING),
        ("invocation-start", False),
        ("op-start", "flaky", 2, True),
        ("attempt-start", "flaky", 2),
        ("attempt-end", "flaky", 2, UserFunctionOutcome.SUCCEEDED),
        ("op-end", "flaky", OperationStatus.SUCCEEDED, 2, None),
        ("invocation-end", InvocationStatus.SUCCEEDED),
    ]


async def test_infos_carry_the_operation_identity() -> None:
    seen: list[Any] = []

    class Plugin:  # no base class: any object with hook methods is a plugin
        def on_operation_start(self, info: OperationStartInfo) -> None:
            seen.append(info)

        def on_operation_end(self, info: OperationEndInfo) -> None:
            seen.append(info)

    @durable_execution(plugins=[Plugin()])
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(lambda _: 1, name="one")

    backend = MemoryBackend()
    result = await LocalRunner(handler, backend).run()
    step_id = next(op.id for op in result.operations if op.type is OperationType.STEP)
    start_info, end_info = seen
    assert isinstance(start_info, OperationStartInfo)
    assert isinstance(end_info, OperationEndInfo)
    for info in seen:
        assert (info.operation_id, info.operation_type, info.name) == (
            step_id,
            OperationType.STEP,
            "one",
        )
        assert info.sub_type == "Step"
        assert info.parent_id is None
    assert start_info.status is OperationStatus.STARTED
    assert end_info.status is OperationStatus.SUCCEEDED


async def test_wait_across_two_invocations_flags_the_first() -> None:
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(2)
        return "done"

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == "done"
    assert recorder.events == [
        ("invocation-start", True),
        ("op-start", None, None, False),  # the wait; it ends between the invocations
        ("invocation-end", InvocationStatus.PENDING),
        ("invocation-start", False),
        # Listed in UpdatedOperationIds: its end is reported when replay reaches it.
        ("op-end", None, OperationStatus.SUCCEEDED, None, None),
        ("invocation-end", InvocationStatus.SUCCEEDED),
    ]


async def test_replayed_steps_are_not_reported_again() -> None:
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    async def handler(event: Any, ctx: DurableContext) -> str:
        first = await ctx.step(lambda _: "a", name="first")
        await ctx.wait(1)
        return first + await ctx.step(lambda _: "b", name="second")

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == "ab"
    second_invocation = recorder.events[recorder.events.index(("invocation-start", False)) :]
    assert second_invocation == [
        ("invocation-start", False),
        ("op-end", None, OperationStatus.SUCCEEDED, None, None),  # the wait, ended meanwhile
        ("op-start", "second", 1, False),
        ("attempt-start", "second", 1),
        ("attempt-end", "second", 1, UserFunctionOutcome.SUCCEEDED),
        ("op-end", "second", OperationStatus.SUCCEEDED, 1, None),
        ("invocation-end", InvocationStatus.SUCCEEDED),
    ]


async def test_failed_step_reports_failed_end_and_failed_invocation() -> None:
    recorder = Recorder()

    async def broken(step: StepContext) -> None:
        raise ValueError("boom")

    no_retry = StepConfig(retry_strategy=RetryPresets.none())

    @durable_execution(plugins=[recorder])
    async def handler_no_retry(event: Any, ctx: DurableContext) -> None:
        await ctx.step(broken, name="broken", config=no_retry)

    result = await LocalRunner(handler_no_retry, MemoryBackend()).run()
    assert result.status.value == "FAILED"
    assert recorder.events[-3:] == [
        ("attempt-end", "broken", 1, UserFunctionOutcome.FAILED),
        ("op-end", "broken", OperationStatus.FAILED, 1, "boom"),
        ("invocation-end", InvocationStatus.FAILED),
    ]


class Raising(DurableInstrumentationPlugin):
    def __init__(self, asynchronous: bool) -> None:
        self.asynchronous = asynchronous
        self.calls: list[str] = []

    def _hook(self, name: str) -> Any:
        self.calls.append(name)
        if self.asynchronous:

            async def fail() -> None:
                await asyncio.sleep(0)
                raise RuntimeError(f"plugin broke in {name}")

            return fail()
        raise RuntimeError(f"plugin broke in {name}")

    def on_invocation_start(self, info: Any) -> Any:
        return self._hook("invocation-start")

    def on_invocation_end(self, info: Any) -> Any:
        return self._hook("invocation-end")

    def on_operation_start(self, info: Any) -> Any:
        return self._hook("op-start")

    def on_operation_end(self, info: Any) -> Any:
        return self._hook("op-end")

    def on_user_function_start(self, info: Any) -> Any:
        return self._hook("attempt-start")

    def on_user_function_end(self, info: Any) -> Any:
        return self._hook("attempt-end")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_a_raising_plugin_is_logged_and_changes_nothing(
    asynchronous: bool, caplog: pytest.LogCaptureFixture
) -> None:
    raising = Raising(asynchronous)
    after = Recorder()

    async def body(step: StepContext) -> str:
        return "fine"

    @durable_execution(plugins=[raising, after])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(body, name="body")

    with caplog.at_level(logging.ERROR, logger="durable_async.plugins"):
        result = await LocalRunner(handler, MemoryBackend()).run()
    assert (result.status.value, result.result) == ("SUCCEEDED", "fine")
    assert raising.calls == [
        "invocation-start",
        "op-start",
        "attempt-start",
        "attempt-end",
        "op-end",
        "invocation-end",
    ]
    # The plugin after the broken one still gets every hook.
    assert len(after.events) == 6
    records = [r for r in caplog.records if r.name == "durable_async.plugins"]
    assert len(records) == 6
    assert all(r.exc_info and "plugin broke" in str(r.exc_info[1]) for r in records)


class Cancelling:
    """Every hook raises CancelledError of its own: sync, or an async one awaiting a future
    something else cancelled (an exporter's, say)."""

    def __init__(self, asynchronous: bool) -> None:
        self.asynchronous = asynchronous
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name not in HOOK_NAMES:
            raise AttributeError(name)

        def hook(info: Any) -> Any:
            self.calls.append(name)
            if not self.asynchronous:
                raise asyncio.CancelledError

            async def cancelled() -> None:
                future = asyncio.get_running_loop().create_future()
                future.cancel()
                await future

            return cancelled()

        return hook


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_a_hook_raising_cancelled_error_is_logged_and_changes_nothing(
    asynchronous: bool, caplog: pytest.LogCaptureFixture
) -> None:
    cancelling = Cancelling(asynchronous)
    after = Recorder()

    async def body(step: StepContext, name: str) -> str:
        return name

    @durable_execution(plugins=[cancelling, after])
    async def handler(event: Any, ctx: DurableContext) -> str:
        first = await ctx.step(body, "a", name="a")
        await ctx.wait(1, name="pause")  # suspends: the wait's end is an outside one
        return first + await ctx.step(body, "b", name="b")

    with caplog.at_level(logging.ERROR, logger="durable_async.plugins"):
        result = await LocalRunner(handler, MemoryBackend()).run()
    assert (result.status.value, result.result, result.invocations) == ("SUCCEEDED", "ab", 2)
    assert set(cancelling.calls) == set(HOOK_NAMES)
    assert ("op-end", "pause", OperationStatus.SUCCEEDED, None, None) in after.events
    assert after.events[-1] == ("invocation-end", InvocationStatus.SUCCEEDED)
    records = [r for r in caplog.records if r.name == "durable_async.plugins"]
    assert len(records) == len(cancelling.calls)
    assert all(r.exc_info and r.exc_info[0] is asyncio.CancelledError for r in records)


async def test_cancelling_the_task_running_a_hook_still_cancels_it() -> None:
    entered = asyncio.Event()

    class Stuck:
        async def on_operation_end(self, info: Any) -> None:
            entered.set()
            await asyncio.Event().wait()

    start_info = InvocationStartInfo(execution_arn="arn", request_id=None, is_first_invocation=True)
    dispatcher = plugins_module.PluginDispatcher([Stuck()], start_info)
    task = asyncio.ensure_future(dispatcher.emit("on_operation_end", None))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class Meddling:
    """Tries to start a durable operation from every hook, with the context it can reach
    (``current_context()``) or one it kept from an earlier hook."""

    def __init__(self) -> None:
        self.ctx: DurableContext | None = None
        self.refused: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name not in HOOK_NAMES:
            raise AttributeError(name)

        async def hook(info: Any) -> None:
            # The invocation's own hooks and the checkpoint flush run outside the handler.
            with contextlib.suppress(RuntimeError):
                self.ctx = current_context()
            if self.ctx is None:
                return
            try:
                await self.ctx.step(lambda step: "sneaked", name=f"from {name}")
            except ValidationError:
                self.refused.append(name)
                raise

        return hook


async def test_hooks_cannot_start_durable_operations() -> None:
    # An operation a hook started would shift the IDs of the handler's own (hooks do not
    # fire for replayed history), and one started from on_operation_change would wait for
    # the checkpoint flush that is running the hook.
    meddling = Meddling()

    async def body(step: StepContext, name: str) -> str:
        return name

    @durable_execution(plugins=[meddling])
    async def handler(event: Any, ctx: DurableContext) -> str:
        first = await ctx.step(body, "a", name="a")
        await ctx.wait(1, name="pause")
        return first + await ctx.step(body, "b", name="b")

    result = await asyncio.wait_for(LocalRunner(handler, MemoryBackend()).run(), 30)
    assert (result.status.value, result.result, result.invocations) == ("SUCCEEDED", "ab", 2)
    assert [op.name for op in result.operations if op.type is not OperationType.EXECUTION] == [
        "a",
        "pause",
        "b",
    ]
    assert {"on_operation_start", "on_operation_end", "on_operation_change"} <= set(
        meddling.refused
    )


async def test_a_task_a_hook_creates_does_not_hold_the_invocation_s_suspension() -> None:
    spawned: list[asyncio.Task[None]] = []

    class Background:
        """Starts a background loop (an exporter's, say) from operation hooks."""

        def _spawn(self) -> None:
            async def export_periodically() -> None:
                for _ in itertools.count():
                    await asyncio.sleep(3600)

            spawned.append(asyncio.get_running_loop().create_task(export_periodically()))

        def on_operation_start(self, info: Any) -> None:
            self._spawn()

        def on_user_function_start(self, info: Any) -> None:
            self._spawn()

    async def body(step: StepContext) -> str:
        return "a"

    @durable_execution(plugins=[Background()])
    async def handler(event: Any, ctx: DurableContext) -> str:
        first = await ctx.step(body, name="a")
        await ctx.wait(1, name="pause")  # must suspend although the plugin's loops run
        return first

    try:
        result = await asyncio.wait_for(LocalRunner(handler, MemoryBackend()).run(), 30)
        assert (result.status.value, result.result, result.invocations) == ("SUCCEEDED", "a", 2)
        assert spawned
        assert not any(task.done() for task in spawned)  # the plugin's to end
    finally:
        await cancel_and_settle(spawned)


async def test_async_hooks_are_awaited_before_the_handler_runs() -> None:
    order: list[str] = []

    class Slow:
        async def on_invocation_start(self, info: InvocationStartInfo) -> None:
            await asyncio.sleep(0.01)
            order.append("hook")

    @durable_execution(plugins=[Slow()])
    async def handler(event: Any, ctx: DurableContext) -> str:
        order.append("handler")
        return "x"

    backend = MemoryBackend()
    await invoke_once(handler, backend, start(backend))
    assert order == ["hook", "handler"]


class RecorderFactory:
    """A factory: builds one Recorder per invocation and keeps them."""

    def __init__(self) -> None:
        self.built: list[Recorder] = []
        self.infos: list[InvocationStartInfo] = []

    def create_plugin(self, info: InvocationStartInfo) -> Recorder:
        self.infos.append(info)
        self.built.append(Recorder())
        return self.built[-1]


FACTORY = RecorderFactory()
INSTANCE = Recorder()


async def test_a_factory_builds_a_plugin_per_invocation() -> None:
    factory = RecorderFactory()

    @durable_execution(plugins=[factory])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(1)
        return "x"

    await LocalRunner(handler, MemoryBackend()).run()
    assert [info.is_first_invocation for info in factory.infos] == [True, False]
    assert [r.events[0] for r in factory.built] == [
        ("invocation-start", True),
        ("invocation-start", False),
    ]


async def test_a_raising_factory_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def create_plugin(self, info: InvocationStartInfo) -> Any:
            raise RuntimeError("no plugin today")

    @durable_execution(plugins=[Broken()])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return "x"

    backend = MemoryBackend()
    with caplog.at_level(logging.ERROR, logger="durable_async.plugins"):
        output = await invoke_once(handler, backend, start(backend))
    assert output["Status"] == "SUCCEEDED"
    assert "no plugin today" in caplog.text


async def test_env_var_loads_module_attribute_factories_and_instances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FACTORY.built.clear()
    INSTANCE.events.clear()
    monkeypatch.setenv(PLUGIN_ENVIRONMENT_VARIABLE, " test_plugins:FACTORY , test_plugins:INSTANCE")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return "x"

    backend = MemoryBackend()
    await invoke_once(handler, backend, start(backend))
    assert len(FACTORY.built) == 1
    assert FACTORY.built[0].events[-1] == ("invocation-end", InvocationStatus.SUCCEEDED)
    assert INSTANCE.events[-1] == ("invocation-end", InvocationStatus.SUCCEEDED)


async def test_env_var_resolves_entry_point_names(monkeypatch: pytest.MonkeyPatch) -> None:
    FACTORY.built.clear()
    entry = metadata.EntryPoint("recorder", "test_plugins:FACTORY", PLUGIN_ENTRY_POINT_GROUP)

    def entry_points(*, group: str) -> list[metadata.EntryPoint]:
        return [entry] if group == PLUGIN_ENTRY_POINT_GROUP else []

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.setenv(PLUGIN_ENVIRONMENT_VARIABLE, "recorder")

    # Registered explicitly too: the same factory is not added twice.
    @durable_execution(plugins=[FACTORY])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return "x"

    backend = MemoryBackend()
    await invoke_once(handler, backend, start(backend))
    assert len(FACTORY.built) == 1


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("a,,b", "non-empty"),
        ("x:y, x:y", "twice"),
        ("no_such_module_xyz:thing", "cannot load"),
        ("unknown-name", "no plugin named"),
        ("test_plugins:Recorder", "is a class"),
        ("test_plugins:pytestmark", "neither a plugin"),
    ],
)
def test_env_var_errors_raise_at_decoration(
    monkeypatch: pytest.MonkeyPatch, value: str, match: str
) -> None:
    monkeypatch.setenv(PLUGIN_ENVIRONMENT_VARIABLE, value)

    async def handler(event: Any, ctx: DurableContext) -> str:
        return "x"

    with pytest.raises(PluginLoadError, match=match):
        durable_execution(handler)


def test_explicit_plugin_class_is_rejected() -> None:
    async def handler(event: Any, ctx: DurableContext) -> str:
        return "x"

    with pytest.raises(PluginLoadError, match=r"plugins\[0\].*is a class"):
        durable_execution(plugins=[Recorder])(handler)


async def test_no_plugin_means_no_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dispatcher was built with no plugin registered")

    # The invocation imports the dispatcher only when there are plugins to dispatch to.
    monkeypatch.setattr(plugins_module, "PluginDispatcher", refuse)
    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        seen.append(current_context()._rt.plugins)
        await ctx.wait(1)
        return await ctx.step(lambda _: "x", config=RETRY_ONCE)

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == "x"
    assert seen == [None, None]


async def test_no_plugin_means_no_hooks_around_child_bodies_and_condition_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import durable_async._operations._common as common

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("body hooks were built with no plugin registered")

    # A large map runs a child body per item: without plugins they must cost nothing new.
    monkeypatch.setattr(common, "BodyHooks", refuse)

    async def item(ctx: DurableContext, value: int, index: int, items: Sequence[int]) -> int:
        return value * 2

    def stop(state: int, attempt: int) -> WaitForConditionDecision:
        return WaitForConditionDecision.stop_polling()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        doubled = await ctx.map([1, 2], item, name="double")
        state = await ctx.wait_for_condition(
            lambda state, check: state + 1, initial_state=0, strategy=stop, name="cond"
        )
        return [*doubled.get_results(), state]

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == [2, 4, 1]
