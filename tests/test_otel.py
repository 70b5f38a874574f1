"""durable_async.otel: spans per invocation and per step attempt, none for replays."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("opentelemetry.trace")
pytest.importorskip("opentelemetry.sdk.trace")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from durable_async import (
    PLUGIN_ENVIRONMENT_VARIABLE,
    DurableContext,
    Duration,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)
from durable_async.otel import INVOCATION_SPAN_NAME, OPERATION_ENDED_EVENT, OpenTelemetryPlugin
from durable_async.testing import LocalRunner, MemoryBackend

pytestmark = pytest.mark.anyio

RETRY_ONCE = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_seconds(1))
    )
)


@pytest.fixture(autouse=True)
def _no_env_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGIN_ENVIRONMENT_VARIABLE, raising=False)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def plugin(exporter: InMemorySpanExporter) -> OpenTelemetryPlugin:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryPlugin(provider)


def invocation_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == INVOCATION_SPAN_NAME]


def step_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name != INVOCATION_SPAN_NAME]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def one(step: StepContext) -> int:
    return 1


async def two(step: StepContext) -> int:
    return 2


async def test_two_invocations_and_replayed_steps_make_no_spans(
    exporter: InMemorySpanExporter, plugin: OpenTelemetryPlugin
) -> None:
    @durable_execution(plugins=[plugin])
    async def handler(event: Any, ctx: DurableContext) -> int:
        a = await ctx.step(one, name="one")
        b = await ctx.step(two, name="two")
        await ctx.wait(5)
        return a + b

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == 3
    assert result.invocations == 2

    first, second = invocation_spans(exporter)
    assert first.parent is None
    assert second.parent is None
    arn = result.arn
    first_attrs, second_attrs = attrs_of(first), attrs_of(second)
    assert first_attrs["durable.execution_arn"] == arn
    assert first_attrs["durable.first_invocation"] is True
    assert first_attrs["durable.status"] == "PENDING"
    assert isinstance(first_attrs["faas.invocation_id"], str)
    assert second_attrs["durable.first_invocation"] is False
    assert second_attrs["durable.status"] == "SUCCEEDED"
    assert first_attrs["faas.invocation_id"] != second_attrs["faas.invocation_id"]
    assert first.status.status_code is StatusCode.UNSET
    assert second.status.status_code is StatusCode.UNSET

    # Both steps ran in invocation 1; invocation 2 replayed them: no span of its own.
    steps = step_spans(exporter)
    assert [s.name for s in steps] == ["one", "two"]
    for span in steps:
        assert parent_of(span) == span_id(first)
        assert span.context is not None
        assert span.context.trace_id == first.context.trace_id
    step_ids = {op.name: op.id for op in result.operations if op.name in ("one", "two")}
    attributes = attrs_of(steps[0])
    assert attributes == {
        "durable.operation.id": step_ids["one"],
        "durable.operation.type": "STEP",
        "durable.operation.sub_type": "Step",
        "durable.operation.name": "one",
        "durable.operation.attempt": 1,
        "durable.operation.outcome": "SUCCEEDED",
    }
    assert attrs_of(steps[1])["durable.operation.id"] == step_ids["two"]


async def test_a_wait_ended_while_suspended_is_an_event_of_the_next_invocation_s_span(
    exporter: InMemorySpanExporter, plugin: OpenTelemetryPlugin
) -> None:
    @durable_execution(plugins=[plugin])
    async def handler(event: Any, ctx: DurableContext) -> int:
        a = await ctx.step(one, name="one")
        await ctx.wait(5, name="pause")
        return a

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.invocations == 2
    first, second = invocation_spans(exporter)
    assert first.events == ()  # the step has its span; nothing ended outside yet
    (ended,) = second.events
    assert ended.name == OPERATION_ENDED_EVENT
    pause = next(op for op in result.operations if op.name == "pause")
    assert dict(ended.attributes or {}) == {
        "durable.operation.id": pause.id,
        "durable.operation.type": "WAIT",
        "durable.operation.sub_type": "Wait",
        "durable.operation.name": "pause",
        "durable.operation.status": "SUCCEEDED",
    }
    assert [s.name for s in step_spans(exporter)] == ["one"]


async def test_a_retried_step_gets_a_span_per_attempt(
    exporter: InMemorySpanExporter, plugin: OpenTelemetryPlugin
) -> None:
    async def flaky(step: StepContext) -> str:
        if step.attempt < 2:
            raise RuntimeError(f"attempt {step.attempt} failed")
        return "ok"

    @durable_execution(plugins=[plugin])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(flaky, name="flaky", config=RETRY_ONCE)

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == "ok"
    first, second = invocation_spans(exporter)
    failed, succeeded = step_spans(exporter)
    assert parent_of(failed) == span_id(first)
    assert parent_of(succeeded) == span_id(second)
    assert attrs_of(failed)["durable.operation.attempt"] == 1
    assert attrs_of(failed)["durable.operation.outcome"] == "FAILED"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "attempt 1 failed"
    (event,) = failed.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.message"] == "attempt 1 failed"
    assert attrs_of(succeeded)["durable.operation.attempt"] == 2
    assert attrs_of(succeeded)["durable.operation.outcome"] == "SUCCEEDED"
    assert succeeded.status.status_code is StatusCode.UNSET


async def test_gathered_steps_get_distinct_spans_under_their_invocation(
    exporter: InMemorySpanExporter, plugin: OpenTelemetryPlugin
) -> None:
    async def slow(step: StepContext, value: int) -> int:
        await asyncio.sleep(0)  # let the other attempts start: their hooks interleave
        return value

    async def child(ctx: DurableContext) -> int:
        return await ctx.step(slow, 10, name="inner")

    @durable_execution(plugins=[plugin])
    async def handler(event: Any, ctx: DurableContext) -> int:
        values = await asyncio.gather(
            *(ctx.step(slow, i, name=f"s{i}") for i in range(5)),
            ctx.run_in_child_context(child, name="child"),
        )
        return sum(values)

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == 20
    (invocation,) = invocation_spans(exporter)
    steps = {s.name: s for s in step_spans(exporter)}
    assert sorted(steps) == ["inner", "s0", "s1", "s2", "s3", "s4"]
    assert len({span_id(s) for s in steps.values()}) == 6
    for span in steps.values():
        assert parent_of(span) == span_id(invocation)
        assert attrs_of(span)["durable.operation.outcome"] == "SUCCEEDED"
    ids = {op.name: op.id for op in result.operations}
    for i in range(5):
        assert attrs_of(steps[f"s{i}"])["durable.operation.id"] == ids[f"s{i}"]
        assert "durable.operation.parent_id" not in attrs_of(steps[f"s{i}"])
    assert attrs_of(steps["inner"])["durable.operation.parent_id"] == ids["child"]


async def test_a_failed_execution_marks_the_invocation_span(
    exporter: InMemorySpanExporter, plugin: OpenTelemetryPlugin
) -> None:
    @durable_execution(plugins=[plugin])
    async def handler(event: Any, ctx: DurableContext) -> None:
        raise ValueError("boom")

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.status == "FAILED"
    (invocation,) = invocation_spans(exporter)
    assert attrs_of(invocation)["durable.status"] == "FAILED"
    assert invocation.status.status_code is StatusCode.ERROR
    assert invocation.status.description == "boom"


async def test_concurrent_executions_on_one_loop_keep_their_own_parents(
    exporter: InMemorySpanExporter, plugin: OpenTelemetryPlugin
) -> None:
    async def slow(step: StepContext) -> int:
        await asyncio.sleep(0)
        return 1

    @durable_execution(plugins=[plugin])
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(slow, name="s")

    results = await asyncio.gather(
        LocalRunner(handler, MemoryBackend()).run(),
        LocalRunner(handler, MemoryBackend()).run(),
    )
    assert [r.result for r in results] == [1, 1]
    invocations = {attrs_of(s)["durable.execution_arn"]: s for s in invocation_spans(exporter)}
    assert len(invocations) == 2
    by_parent = {parent_of(s) for s in step_spans(exporter)}
    assert by_parent == {span_id(s) for s in invocations.values()}


async def test_the_plugin_never_raises_into_the_sdk(
    exporter: InMemorySpanExporter, plugin: OpenTelemetryPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("tracer broke")

    plugin._tracer = Broken()  # type: ignore[assignment]

    @durable_execution(plugins=[plugin])
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(one, name="one")

    result = await LocalRunner(handler, MemoryBackend()).run()
    assert result.result == 1
    assert exporter.get_finished_spans() == ()
    assert any(r.name == "durable_async.otel" for r in caplog.records)


def test_the_package_root_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, durable_async; "
        "bad = [m for m in sys.modules if m.startswith(('opentelemetry', 'durable_async.otel'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
