"""``AioBotocoreClient`` over real HTTP against AWS's dex-local-runner.

Nothing is mocked: the runner (its own process, from the conformance checker's venv)
invokes an aiohttp Lambda-Invoke endpoint served on this test's event loop, which runs
durable_async handlers whose checkpoints travel back to the runner through aiobotocore.
Skipped when the checker's venv cannot be built (set ``DURABLE_REQUIRE_RUNNER=1`` to
make that a failure, as CI should).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from datetime import UTC
from typing import Any

import botocore.exceptions
import pytest
from aiobotocore.session import AioSession, get_session
from dex_harness import (
    REGION,
    DexRunner,
    InvokeEndpoint,
    history,
    wait_terminal,
)

from durable_async import (
    AioBotocoreClient,
    BackendError,
    CheckpointError,
    DurableContext,
    ExecutionStateError,
    RetryDecision,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async._client.aiobotocore import classify
from durable_async._identity import operation_id
from durable_async._wire.enums import (
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)
from durable_async._wire.models import (
    CheckpointRequest,
    GetExecutionStateRequest,
    OperationUpdate,
)

pytestmark = [pytest.mark.runner, pytest.mark.anyio, pytest.mark.usefixtures("fake_aws_env")]

LOG = logging.getLogger("test_aiobotocore_runner")
UNKNOWN_ARN = f"{uuid.UUID(int=0)}/{uuid.UUID(int=1)}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingSession(AioSession):  # type: ignore[misc]
    """A real aiobotocore session that counts the clients created from it."""

    def __init__(self) -> None:
        super().__init__()
        self.created = 0

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        self.created += 1
        return super().create_client(*args, **kwargs)


def step_start(position: int, name: str = "probe") -> OperationUpdate:
    return OperationUpdate(
        id=operation_id(None, position),
        type=OperationType.STEP,
        action=OperationAction.START,
        name=name,
        sub_type=OperationSubType.STEP,
    )


def assert_stale_token_error(error: BaseException, kind: type[BackendError]) -> None:
    assert isinstance(error, kind)
    cause = error.__cause__
    assert isinstance(cause, botocore.exceptions.ClientError)
    wire = cause.response
    message = wire["Error"]["Message"]
    assert wire["ResponseMetadata"]["HTTPStatusCode"] == error.status_code == 400
    assert message.startswith("Invalid checkpoint token")
    # The service names the code in an x-amzn-ErrorType header; dex-local-runner sends
    # none, so botocore reports the HTTP status instead. Either way: retry.
    assert error.code in ("InvalidParameterValueException", "400")
    assert error.code == wire["Error"]["Code"]
    assert error.retryable is True
    assert classify(error.code, message, 400) is True


async def start(runner: DexRunner, name: str, value: Any, endpoint: InvokeEndpoint) -> str:
    return await asyncio.to_thread(
        runner.start_execution, name, value, lambda_endpoint=endpoint.url
    )


async def test_three_steps_and_a_wait_end_to_end(dex_runner: DexRunner) -> None:
    ran: list[str] = []

    async def add(sc: StepContext, a: int, b: int) -> int:
        ran.append(f"add{b}")
        return a + b

    def double(sc: StepContext, x: int) -> int:  # a plain step: runs in a worker thread
        ran.append("double")
        return x * 2

    @durable_execution
    async def workflow(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
        x = await ctx.step(add, event["a"], 1)
        y = await ctx.step(double, x)
        await ctx.wait(1, name="pause")
        z = await ctx.step(add, y, 3, name="finish")
        return {"x": x, "y": y, "z": z}

    session = CountingSession()
    client = AioBotocoreClient(session=session, endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await workflow.invoke_async(event, None, client=client)

    try:
        async with (
            InvokeEndpoint({"workflow": invoke}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):
            arn = await start(dex_runner, "workflow", {"a": 4}, endpoint)
            described = await wait_terminal(lam, arn)
            events = await history(lam, arn)
    finally:
        await client.aclose()

    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED", described
    assert json.loads(described["Result"]) == {"x": 5, "y": 10, "z": 13}
    # Two invocations: the wait suspends the first, the runner's timer resumes it.
    assert [out["Status"] for _, _, out in endpoint.invocations] == ["PENDING", "SUCCEEDED"]
    # Replay did not re-run the first two steps.
    assert ran == ["add1", "double", "add3"]
    # One botocore client served every call of both (warm) invocations.
    assert session.created == 1

    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "StepStarted",
        "StepSucceeded",
        "WaitStarted",
        "InvocationCompleted",
        "WaitSucceeded",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    steps = [e for e in events if e["EventType"] == "StepSucceeded"]
    assert [e["Name"] for e in steps] == ["add", "double", "finish"]
    assert [e["StepSucceededDetails"]["Result"]["Payload"] for e in steps] == ["5", "10", "13"]
    assert [e["Id"] for e in steps] == [operation_id(None, n) for n in (1, 2, 4)]
    wait_started = next(e for e in events if e["EventType"] == "WaitStarted")
    wait_done = next(e for e in events if e["EventType"] == "WaitSucceeded")
    assert wait_started["Name"] == "pause"
    assert wait_started["Id"] == operation_id(None, 3)
    assert wait_started["WaitStartedDetails"]["Duration"] == 1
    waited = (wait_done["EventTimestamp"] - wait_started["EventTimestamp"]).total_seconds()
    assert waited >= 0.99
    succeeded = events[-1]["ExecutionSucceededDetails"]["Result"]["Payload"]
    assert json.loads(succeeded) == {"x": 5, "y": 10, "z": 13}


async def test_handler_error_fails_the_execution(dex_runner: DexRunner) -> None:
    @durable_execution
    async def broken(event: dict[str, Any], ctx: DurableContext) -> None:
        async def fine(sc: StepContext) -> str:
            return "ok"

        await ctx.step(fine)
        raise ValueError(f"bad input {event['n']}")

    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await broken.invoke_async(event, None, client=client)

    try:
        async with (
            InvokeEndpoint({"broken": invoke}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):
            arn = await start(dex_runner, "broken", {"n": 7}, endpoint)
            described = await wait_terminal(lam, arn)
            events = await history(lam, arn)
    finally:
        await client.aclose()

    assert described["Status"] == "FAILED", described
    assert described["Error"]["ErrorType"] == "ValueError"
    assert described["Error"]["ErrorMessage"] == "bad input 7"
    types = [e["EventType"] for e in events]
    assert types[:3] == ["ExecutionStarted", "StepStarted", "StepSucceeded"]
    assert types[-1] == "ExecutionFailed"


async def test_a_retry_due_while_a_sibling_step_runs_goes_on_in_the_same_invocation(
    dex_runner: DexRunner,
) -> None:
    """Three rounds of gather(a step retried after 1 s, a step that works for 2.5 s).

    Each retry falls due while its sibling still works; the sibling's checkpoint response
    shows it READY and the retry runs at once, so the execution never returns PENDING with
    nothing pending (which the service refuses).
    """
    attempts: list[str] = []
    retry_after_a_second = StepConfig(retry_strategy=lambda error, n: RetryDecision.retry(1))

    async def flaky(step: StepContext, round_: int) -> str:
        attempts.append(f"flaky{round_}.{step.attempt}")
        if step.attempt == 1:
            raise RuntimeError("first attempt fails")
        return f"r{round_}"

    async def slow(step: StepContext) -> str:
        await asyncio.sleep(2.5)  # the work itself: 2.5 s of I/O
        return "slow"

    @durable_execution
    async def rounds(event: dict[str, Any], ctx: DurableContext) -> list[Any]:
        out = []
        for round_ in range(3):
            out.append(
                await asyncio.gather(
                    ctx.step(flaky, round_, name=f"flaky{round_}", config=retry_after_a_second),
                    ctx.step(slow, name=f"slow{round_}"),
                )
            )
        return out

    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await rounds.invoke_async(event, None, client=client)

    try:
        async with (
            InvokeEndpoint({"rounds": invoke}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):
            arn = await start(dex_runner, "rounds", {}, endpoint)
            described = await wait_terminal(lam, arn, within=60)
    finally:
        await client.aclose()

    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED", described
    assert json.loads(described["Result"]) == [["r0", "slow"], ["r1", "slow"], ["r2", "slow"]]
    assert [out["Status"] for _, _, out in endpoint.invocations] == ["SUCCEEDED"]
    assert attempts == [f"flaky{r}.{a}" for r in range(3) for a in (1, 2)]


async def test_raw_checkpoints_stale_token_and_client_token(
    dex_runner: DexRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token chaining, ClientToken idempotency and the stale-token error, mid-invocation.

    The runner accepts checkpoints only while it is invoking the function, so the calls
    are made from inside the Invoke; the client is configured only through the
    environment (``AWS_ENDPOINT_URL_LAMBDA``), as in Lambda.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", dex_runner.url)
    client = AioBotocoreClient()
    seen: dict[str, Any] = {}

    async def raw(event: dict[str, Any]) -> dict[str, Any]:
        arn, token0 = event["DurableExecutionArn"], event["CheckpointToken"]
        first = CheckpointRequest(arn, token0, (step_start(1),), client_token=uuid.uuid4().hex)
        seen["first"] = await client.checkpoint(first, LOG)
        # The same request again (a botocore retry): the runner answers from its cache.
        seen["repeat"] = await client.checkpoint(first, LOG)
        stale = CheckpointRequest(arn, token0, (step_start(2),), client_token=uuid.uuid4().hex)
        try:
            await client.checkpoint(stale, LOG)
        except BackendError as exc:
            seen["stale"] = exc
        token1 = seen["first"].checkpoint_token
        seen["second"] = await client.checkpoint(
            CheckpointRequest(arn, token1, (step_start(2),), client_token=uuid.uuid4().hex), LOG
        )
        return {"Status": "SUCCEEDED", "Result": json.dumps("done")}

    try:
        async with (
            InvokeEndpoint({"raw": raw}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):
            arn = await start(dex_runner, "raw", None, endpoint)
            described = await wait_terminal(lam, arn)
            events = await history(lam, arn)
    finally:
        await client.aclose()

    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED"
    first, repeat, second = seen["first"], seen["repeat"], seen["second"]
    assert first.checkpoint_token
    assert first.checkpoint_token != endpoint.invocations[0][1]["CheckpointToken"]
    assert repeat.checkpoint_token == first.checkpoint_token
    assert second.checkpoint_token not in (None, first.checkpoint_token)
    [op] = first.new_execution_state.operations
    assert (op.id, op.type, op.status, op.name) == (
        operation_id(None, 1),
        OperationType.STEP,
        OperationStatus.STARTED,
        "probe",
    )

    assert_stale_token_error(seen["stale"], CheckpointError)

    # The cached repeat recorded nothing: one StepStarted per distinct step.
    started = [e["Id"] for e in events if e["EventType"] == "StepStarted"]
    assert started == [operation_id(None, 1), operation_id(None, 2)]


async def test_get_execution_state_pages(dex_runner: DexRunner) -> None:
    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)
    seen: dict[str, Any] = {}

    async def pager(event: dict[str, Any]) -> dict[str, Any]:
        arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
        updates = tuple(step_start(n, f"s{n}") for n in range(1, 6))
        response = await client.checkpoint(CheckpointRequest(arn, token, updates), LOG)
        assert response.checkpoint_token is not None
        token = response.checkpoint_token
        pages = []
        marker = None
        while True:
            page = await client.get_execution_state(
                GetExecutionStateRequest(arn, token, marker, max_items=2), LOG
            )
            pages.append(page)
            marker = page.next_marker
            if not marker:
                break
        seen["pages"] = pages
        seen["whole"] = await client.get_execution_state(GetExecutionStateRequest(arn, token), LOG)
        try:
            await client.get_execution_state(
                GetExecutionStateRequest(arn, event["CheckpointToken"]), LOG
            )
        except BackendError as exc:
            seen["stale"] = exc
        return {"Status": "SUCCEEDED", "Result": "null"}

    try:
        async with (
            InvokeEndpoint({"pager": pager}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):
            arn = await start(dex_runner, "pager", {"k": 1}, endpoint)
            described = await wait_terminal(lam, arn)
    finally:
        await client.aclose()

    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED"
    pages = seen["pages"]
    assert [len(p.operations) for p in pages] == [2, 2, 2]
    assert all(p.next_marker for p in pages[:-1])
    assert pages[-1].next_marker is None
    ops = [op for p in pages for op in p.operations]
    assert ops[0].type is OperationType.EXECUTION
    assert ops[0].execution_details is not None
    assert ops[0].execution_details.input_payload == '{"k": 1}'
    assert [op.id for op in ops[1:]] == [operation_id(None, n) for n in range(1, 6)]
    assert [op.name for op in ops[1:]] == ["s1", "s2", "s3", "s4", "s5"]
    assert {op.status for op in ops[1:]} == {OperationStatus.STARTED}
    assert seen["whole"].operations == tuple(ops)
    assert seen["whole"].next_marker is None
    # Every parsed timestamp shares the one UTC zone (botocore's default: a tzlocal each).
    stamps = [op.start_timestamp for op in ops]
    assert all(stamp is not None and stamp.tzinfo is UTC for stamp in stamps)
    assert_stale_token_error(seen["stale"], ExecutionStateError)


async def test_unknown_execution_is_not_retryable(dex_runner: DexRunner) -> None:
    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)
    try:
        with pytest.raises(CheckpointError) as checkpoint_error:
            await client.checkpoint(
                CheckpointRequest(UNKNOWN_ARN, "bm90LWEtdG9rZW4=", (step_start(1),)), LOG
            )
        with pytest.raises(ExecutionStateError) as state_error:
            await client.get_execution_state(
                GetExecutionStateRequest(UNKNOWN_ARN, "bm90LWEtdG9rZW4="), LOG
            )
    finally:
        await client.aclose()

    for error in (checkpoint_error.value, state_error.value):
        cause = error.__cause__
        assert isinstance(cause, botocore.exceptions.ClientError)
        wire = cause.response
        code = wire["Error"]["Code"]
        status = wire["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500, wire
        assert (error.code, error.status_code) == (code, status)
        assert error.retryable is classify(code, wire["Error"].get("Message", ""), status)
        assert error.retryable is False


async def test_client_reuse_other_loop_and_aclose(dex_runner: DexRunner) -> None:
    session = CountingSession()
    client = AioBotocoreClient(session=session, endpoint_url=dex_runner.url, region_name=REGION)
    await client.aclose()  # never used: nothing to close
    request = GetExecutionStateRequest(UNKNOWN_ARN, "bm90LWEtdG9rZW4=")

    async def call() -> BackendError:
        try:
            await client.get_execution_state(request, LOG)
        except BackendError as exc:
            return exc
        raise AssertionError("an unknown execution was found")

    for _ in range(3):
        assert (await call()).retryable is False
    assert session.created == 1

    # Another loop (another thread) may not use a client bound to this one.
    outcome: list[BaseException] = []

    def elsewhere() -> None:
        try:
            asyncio.run(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    await asyncio.to_thread(thread.join, 30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError)
    assert "another event loop" in str(outcome[0])
    assert session.created == 1  # the refused call created nothing

    # aclose releases the botocore client; the next call opens a fresh one.
    await client.aclose()
    await client.aclose()  # idempotent
    assert (await call()).retryable is False
    assert session.created == 2
    await client.aclose()

    # After aclose the client is free to serve another loop.
    def other_loop() -> int | None:
        async def go() -> int | None:
            try:
                return (await call()).status_code
            finally:
                await client.aclose()

        return asyncio.run(go())

    status = await asyncio.to_thread(other_loop)
    assert status is not None
    assert 400 <= status < 500
    assert session.created == 3


async def test_pipelined_steps_take_a_handful_of_calls_against_the_runner(
    dex_runner: DexRunner,
) -> None:
    """200 sequential pipelined steps over real HTTP: few calls, the full history in order."""
    calls: list[int] = []

    class Counting(AioBotocoreClient):
        async def checkpoint(self, params: CheckpointRequest, logger: logging.Logger) -> Any:
            calls.append(len(params.updates))
            return await super().checkpoint(params, logger)

    async def small(sc: StepContext, i: int) -> int:
        return i

    @durable_execution(pipelined=True)
    async def pipelined(event: int, ctx: DurableContext) -> int:
        return sum([await ctx.step(small, i, name=f"s{i}") for i in range(event)])

    client = Counting(endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await pipelined.invoke_async(event, None, client=client)

    try:
        async with (
            InvokeEndpoint({"pipelined": invoke}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):
            arn = await start(dex_runner, "pipelined", 200, endpoint)
            described = await wait_terminal(lam, arn)
            events = await history(lam, arn)
    finally:
        await client.aclose()

    assert described["Status"] == "SUCCEEDED", described
    assert json.loads(described["Result"]) == sum(range(200))
    assert sum(calls) == 400
    assert len(calls) <= 20, calls
    succeeded = [e["Name"] for e in events if e["EventType"] == "StepSucceeded"]
    assert succeeded == [f"s{i}" for i in range(200)]
