"""Failures are visible: logged when they happen, recorded with the user's stack trace."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from typing import Any

import pytest

from durable_async import (
    ChildContextError,
    DurableContext,
    Duration,
    JitterStrategy,
    MapConfig,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepError,
    ValidationError,
    WaitForConditionError,
    WaitStrategyConfig,
    create_retry_strategy,
    create_wait_strategy,
    durable_execution,
)
from durable_async._error_wire import ERROR_LIMIT_BYTES
from durable_async._stack import stack_lines
from durable_async._validation import validate_name
from durable_async.testing import ErrorObject, LocalRunner, MemoryBackend

FAILURES = "durable_async.failures"
SECRET = "s3cr3t-payload"


def failure_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == FAILURES]


def step_error(result: Any, name: str) -> ErrorObject:
    (op,) = [op for op in result.operations if op.name == name]
    assert op.step_details is not None
    assert op.step_details.error is not None
    return op.step_details.error  # type: ignore[no-any-return]


def three_attempts(delay: int = 7) -> StepConfig:
    return StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=3,
                initial_delay=Duration(delay),
                backoff_rate=1,
                jitter_strategy=JitterStrategy.NONE,
            )
        )
    )


def raise_declined() -> None:
    raise ValueError("card declined")


@pytest.mark.anyio
async def test_retried_attempts_log_a_warning_with_type_message_attempt_and_delay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=FAILURES)

    def charge(step: StepContext, order: str) -> None:
        raise_declined()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(charge, SECRET, name="charge", config=three_attempts(delay=7))

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    warnings = [r for r in failure_records(caplog) if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"step 'charge' attempt {n} failed with ValueError: card declined; retrying in 7 s"
        for n in (1, 2)
    ]
    assert [r.attempt for r in warnings] == [1, 2]  # type: ignore[attr-defined]
    assert all(r.exc_info is None for r in warnings)
    for record in warnings:
        assert record.executionArn == result.arn  # type: ignore[attr-defined]
        assert record.operationName == "charge"  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_step_that_gives_up_logs_an_error_with_the_users_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=FAILURES)

    async def charge(step: StepContext) -> None:
        raise_declined()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(charge, name="charge", config=three_attempts())

    result = await LocalRunner(handler).run()
    errors = [r for r in failure_records(caplog) if r.levelno == logging.ERROR]
    step_record, execution_record = errors
    assert step_record.getMessage() == (
        "step 'charge' failed after 3 attempts with ValueError: card declined"
    )
    assert step_record.exc_info is not None
    assert step_record.exc_info[0] is ValueError
    # The logged traceback starts at the user's code, not at the SDK that called it.
    traceback = step_record.exc_info[2]
    assert traceback is not None
    assert traceback.tb_frame.f_code.co_filename == __file__
    assert step_record.attempt == 3  # type: ignore[attr-defined]
    # The execution's failure is logged too, without repeating the step's traceback.
    assert execution_record.getMessage() == ("execution failed with ValueError: card declined")
    assert execution_record.exc_info is None
    assert execution_record.executionArn == result.arn  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_failures_are_not_logged_again_when_replayed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=FAILURES)

    def flaky(step: StepContext) -> str:
        if step.attempt == 1:
            raise_declined()
        return "ok"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        value = await ctx.step(flaky, name="flaky", config=three_attempts(delay=2))
        await ctx.wait(seconds=30)  # more invocations that replay the step
        await ctx.wait(seconds=30)
        return value

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert result.invocations >= 3
    assert [r.levelname for r in failure_records(caplog)] == ["WARNING"]


@pytest.mark.anyio
async def test_no_payload_reaches_the_failure_log_above_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=FAILURES)

    def submit(step: StepContext, order: dict[str, str]) -> None:
        raise RuntimeError("queue unavailable")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(submit, {"card": SECRET}, name="submit", config=three_attempts())

    await LocalRunner(handler).run({"card": SECRET})
    records = failure_records(caplog)
    assert records
    for record in records:
        text = logging.Formatter().format(record)
        assert SECRET not in text


@pytest.mark.anyio
async def test_callback_failures_never_log_the_callback_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = MemoryBackend()
    seen: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        callback = await ctx.create_callback(name="approval")  # no timeout: waits
        seen.append(callback.callback_id)
        await callback.result()

    runner = LocalRunner(handler, backend)
    pending = await runner.run()
    assert pending.status == "PENDING"
    backend.fail_callback(seen[0], ErrorObject(message="rejected", type="Rejected"))
    result = await runner.resume(pending.arn)
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.message == "rejected"
    assert any(r.name == FAILURES for r in caplog.records)
    for record in caplog.records:
        assert seen[0] not in logging.Formatter().format(record)


@pytest.mark.anyio
async def test_recorded_stack_trace_starts_at_user_code_and_ends_with_the_error() -> None:
    def parse(step: StepContext, raw: str) -> Any:  # plain: runs in a worker thread
        try:
            return json.loads(raw)
        except ValueError as error:
            raise RuntimeError("bad input") from error

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.step(parse, "{", name="parse", config=three_attempts())

    result = await LocalRunner(handler).run()
    trace = step_error(result, "parse").stack_trace
    assert trace is not None
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[1].startswith(f'  File "{__file__}"')
    assert trace[1].endswith("in parse")
    assert "The above exception was the direct cause of the following exception:" in trace
    assert trace[-2].strip() == 'raise RuntimeError("bad input") from error'
    assert trace[-1] == "RuntimeError: bad input"
    assert any(line.startswith("json.decoder.JSONDecodeError: ") for line in trace)
    sdk_dir = "durable_async/"
    anyio_dir = "anyio/"
    assert not any(sdk_dir in line or anyio_dir in line for line in trace)
    # The failure raised to the handler (and the execution's error) carries the same stack.
    assert result.error is not None
    assert result.error.stack_trace == trace


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("misuse", "message"),
    [
        ("wait", "a wait must last at least 1 second"),
        ("name", "invalid operation name"),
        ("config", "max_concurrency must be at least 1"),
    ],
)
async def test_recorded_stack_trace_of_a_misuse_ends_at_the_users_call(
    misuse: str, message: str
) -> None:
    async def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        return value

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        if misuse == "wait":
            await ctx.wait(0.5)
        elif misuse == "name":
            await ctx.wait(5, name="bad\x00name")
        else:
            await ctx.map([1], item, config=MapConfig(max_concurrency=0))

    result = await LocalRunner(handler).run()
    assert result.error is not None
    trace = result.error.stack_trace
    assert trace is not None
    # The SDK's own checks below the user's call (and attrs' generated __init__) are left
    # out: the user's line explains the failure.
    assert trace[1].startswith(f'  File "{__file__}"')
    assert trace[1].endswith("in handler")
    assert len(trace) == 4, trace
    assert trace[-1].split(": ", 1)[1].startswith(message)


def test_recorded_stack_trace_leaves_out_sdk_frames_between_user_frames() -> None:
    def keep_polling(state: int) -> bool:
        raise LookupError("state unreadable")

    strategy = create_wait_strategy(WaitStrategyConfig(should_continue_polling=keep_polling))
    try:
        strategy(1, 1)  # this frame, the SDK's strategy, then keep_polling
    except LookupError as error:
        trace = stack_lines(error)
    assert trace is not None
    files = [line for line in trace if line.startswith("  File ")]
    assert [line.rsplit(" in ", 1)[1] for line in files] == [
        "test_recorded_stack_trace_leaves_out_sdk_frames_between_user_frames",
        "keep_polling",
    ]
    assert trace[-1] == "LookupError: state unreadable"


def test_a_stack_of_generated_and_sdk_frames_alone_records_no_traceback_header() -> None:
    namespace: dict[str, Any] = {"validate_name": validate_name}
    source = (
        "def run():\n"
        "    try:\n"
        "        validate_name(5)\n"
        "    except Exception as e:\n"
        "        return e\n"
    )
    exec(compile(source, "<attrs generated init Example>", "exec"), namespace)
    error = namespace["run"]()
    assert isinstance(error, ValidationError)
    assert stack_lines(error) is None  # nothing of the user's to show: no empty header


@pytest.mark.anyio
async def test_recorded_stack_trace_keeps_library_frames_below_user_code() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return json.loads("{")

    result = await LocalRunner(handler).run()
    assert result.error is not None
    trace = result.error.stack_trace
    assert trace is not None
    assert any("json" in line and "decoder.py" in line for line in trace)


@pytest.mark.anyio
async def test_recorded_stack_trace_fits_the_services_error_limit() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise ValueError("bottom")
        deep(n - 1)

    async def recurse(step: StepContext) -> None:
        deep(400)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(recurse, name="recurse", config=StepConfig(RetryPresets.none()))

    result = await LocalRunner(handler).run()
    error = step_error(result, "recurse")
    assert error.stack_trace is not None
    wire = {"ErrorMessage": error.message, "ErrorType": error.type, "StackTrace": error.stack_trace}
    assert len(json.dumps(wire)) <= ERROR_LIMIT_BYTES
    assert error.stack_trace[-1] == "ValueError: bottom"  # the innermost frames are kept


@pytest.mark.anyio
async def test_step_error_caught_by_the_handler_exposes_the_stack() -> None:
    async def charge(step: StepContext) -> None:
        raise_declined()

    caught: list[StepError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(charge, name="charge", config=StepConfig(RetryPresets.none()))
        except StepError as error:
            caught.append(error)
        return "compensated"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    (error,) = caught
    assert error.stack_trace is not None
    assert error.stack_trace[-1] == "ValueError: card declined"
    assert any("in raise_declined" in line for line in error.stack_trace)


@pytest.mark.anyio
async def test_a_failing_condition_check_logs_an_error_and_records_its_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=FAILURES)

    async def check(state: int, check_context: Any) -> int:
        if state >= 2:
            raise_declined()
        return state + 1

    caught: list[WaitForConditionError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        try:
            await ctx.wait_for_condition(
                check,
                initial_state=0,
                strategy=WaitStrategyConfig(should_continue_polling=lambda s: True),
                name="poll",
            )
        except WaitForConditionError as error:
            caught.append(error)
            raise

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    (record, _execution) = failure_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "wait_for_condition 'poll' failed after 3 attempts with ValueError: card declined"
    )
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError
    (error,) = caught
    assert error.stack_trace is not None
    assert error.stack_trace[-1] == "ValueError: card declined"


@pytest.mark.anyio
async def test_a_child_body_that_raises_is_logged_once_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=FAILURES)

    async def fails_itself(child: DurableContext) -> None:
        raise KeyError("missing")

    async def step_fails(child: DurableContext) -> None:
        await child.step(lambda step: raise_declined(), name="inner", config=three_attempts())

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        for body, name in ((fails_itself, "own"), (step_fails, "nested")):
            with contextlib.suppress(ChildContextError):
                await ctx.run_in_child_context(body, name=name)

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    errors = [r for r in failure_records(caplog) if r.levelno == logging.ERROR]
    # The child's own failure, then the nested step's (not again for its child context).
    assert [r.getMessage() for r in errors] == [
        "child context 'own' failed with KeyError: 'missing'",
        "step 'inner' failed after 3 attempts with ValueError: card declined",
    ]
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is KeyError


def test_importing_the_package_configures_no_logging() -> None:
    code = (
        "import logging, durable_async, durable_async.testing\n"
        "root = logging.getLogger()\n"
        "names = ('durable_async', 'durable_async.handler', 'durable_async.failures')\n"
        "assert not root.handlers, root.handlers\n"
        "assert all(not logging.getLogger(n).handlers for n in names)\n"
        "assert all(logging.getLogger(n).level == logging.NOTSET for n in names)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.anyio
async def test_ctx_logger_reaches_the_root_handler_lambda_installs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Lambda's Python runtime puts its handler on the root logger (and sets the root level
    # from AWS_LAMBDA_LOG_LEVEL in JSON mode); AWS's SDK logs to the root logger. Records
    # of ctx.logger (and the failure log) propagate there with no logging setup.
    root = logging.getLogger()
    received: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            received.append(record)

    collect = Collect()
    root.addHandler(collect)
    monkeypatch.setattr(root, "level", logging.INFO)
    try:

        async def fails(step: StepContext) -> None:
            raise_declined()

        @durable_execution
        async def handler(event: Any, ctx: DurableContext) -> None:
            ctx.logger.info("processing order")
            await ctx.step(fails, name="charge", config=StepConfig(RetryPresets.none()))

        await LocalRunner(handler).run()
    finally:
        root.removeHandler(collect)
    messages = [(r.name, r.levelname, r.getMessage()) for r in received]
    assert ("durable_async.handler", "INFO", "processing order") in messages
    assert (
        FAILURES,
        "ERROR",
        "step 'charge' failed after 1 attempt with ValueError: card declined",
    ) in messages
