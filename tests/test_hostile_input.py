"""Hostile and broken input: a typed, clear error, nothing partial written, never a crash.

Events and state a newer or broken service might send, and handlers that return the wrong
thing. Cases already covered elsewhere: malformed events (test_events.py), payload limits
(test_payloads.py, test_child.py, test_invoke.py), names and IDs (test_wait_and_validation.py,
test_regressions_review3.py), serdes that raise or return non-strings (test_serdes.py),
non-JSON input and results (test_events.py, test_payloads.py), truncated and garbled answers
(tests/faults/test_proxy_faults.py). The state-page cases here run aiobotocore for real
against a small aiohttp server that answers like the service, only wrongly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import start

from durable_async import (
    AioBotocoreClient,
    DurableContext,
    DurableError,
    ExecutionStateError,
    InvalidEventError,
    StepContext,
    durable_execution,
)
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend

ARN = "arn:aws:lambda:us-west-2:123456789012:function:f:$LATEST/durable-execution/e/1"
EXECUTION_OP = {"Id": "exec", "Type": "EXECUTION", "Status": "STARTED", "ExecutionDetails": {}}


async def step_one(step: StepContext) -> int:
    return 1


@durable_execution
async def one_step(event: Any, ctx: DurableContext) -> int:
    return int(await ctx.step(step_one, name="one"))


def event_with(operations: list[Any], marker: Any = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Operations": operations}
    if marker is not None:
        state["NextMarker"] = marker
    return {
        "DurableExecutionArn": ARN,
        "CheckpointToken": "token-1",
        "InitialExecutionState": state,
    }


class FakeService:
    """An aiohttp server answering the two durable-execution calls from a script.

    ``pages`` answers each GetDurableExecutionState in turn (the last one again and again);
    checkpoints are counted and refused, so a test sees anything the SDK tried to write.
    """

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.reads = 0
        self.writes = 0
        self.url = ""

    async def _answer(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            self.writes += 1
            return web.json_response({"message": "no"}, status=400)
        page = self.pages[min(self.reads, len(self.pages) - 1)]
        self.reads += 1
        return web.json_response(page)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[list[dict[str, Any]]], Any]]:
    runners: list[web.AppRunner] = []

    async def start_service(pages: list[dict[str, Any]]) -> FakeService:
        service = FakeService(pages)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", service._answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        service.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return service

    yield start_service
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)


async def invoke_against(service: FakeService, event: dict[str, Any]) -> Any:
    client = AioBotocoreClient(endpoint_url=service.url, region_name="us-west-2", max_attempts=1)
    try:
        return await one_step.invoke_async(event, FakeLambdaContext(), client=client)
    finally:
        await client.aclose()


# -- what a newer service may send -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ({"Id": "x", "Type": "TELEPORT", "Status": "STARTED"}, "unknown OperationType 'TELEPORT'"),
        ({"Id": "x", "Type": "STEP", "Status": "PAUSED"}, "unknown OperationStatus 'PAUSED'"),
        ({"Id": "x", "Status": "STARTED"}, "operation 'x': no OperationType"),
        ({"Type": "STEP", "Status": "STARTED"}, "an operation has no Id"),
    ],
)
async def test_an_unknown_operation_type_or_status_in_the_event_is_named(
    operation: dict[str, Any], expected: str
) -> None:
    backend = MemoryBackend()
    with pytest.raises(InvalidEventError, match=expected):
        await one_step.invoke_async(event_with([EXECUTION_OP, operation]), client=backend)
    assert backend.checkpoint_calls == []


@pytest.mark.anyio
@pytest.mark.usefixtures("aws_env")
async def test_an_unknown_operation_type_in_a_state_page_fails_the_invocation_for_a_retry(
    serve: Any,
) -> None:
    service = await serve([{"Operations": [{"Id": "y", "Type": "TELEPORT", "Status": "READY"}]}])
    with pytest.raises(ExecutionStateError, match="newer service") as caught:
        await invoke_against(service, event_with([EXECUTION_OP], marker="page-2"))
    # Retryable: the execution must not fail for what a newer SDK will read.
    assert caught.value.retryable is True
    assert (service.reads, service.writes) == (1, 0)


# -- broken state ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.usefixtures("aws_env")
async def test_a_next_marker_loop_is_detected_before_anything_runs(serve: Any) -> None:
    service = await serve(
        [
            {"Operations": [], "NextMarker": "page-3"},
            {"Operations": [], "NextMarker": "page-2"},  # back to a page already read
        ]
    )
    with pytest.raises(ExecutionStateError, match="pages loop") as caught:
        await invoke_against(service, event_with([EXECUTION_OP], marker="page-2"))
    assert caught.value.retryable is True
    assert (service.reads, service.writes) == (2, 0)


@pytest.mark.anyio
@pytest.mark.usefixtures("aws_env")
async def test_a_next_marker_that_is_not_a_string_is_a_typed_error(serve: Any) -> None:
    service = await serve([{"Operations": [], "NextMarker": 7}])
    with pytest.raises(ExecutionStateError, match="a NextMarker is a int"):
        await invoke_against(service, event_with([EXECUTION_OP], marker="page-2"))
    assert service.writes == 0
    with pytest.raises(InvalidEventError, match="NextMarker must be a string, got list"):
        await one_step.invoke_async(event_with([EXECUTION_OP], marker=[1]), client=MemoryBackend())


class LoopingPagesBackend(MemoryBackend):
    """Every checkpoint answer and every state page points at the same next page."""

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        response = await super().checkpoint(params, logger)
        state = ExecutionStatePage(response.new_execution_state.operations, "again")
        return CheckpointResponse(response.checkpoint_token, state)

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        return ExecutionStatePage((), "again")


@pytest.mark.anyio
async def test_a_next_marker_loop_after_a_checkpoint_fails_the_invocation_for_a_retry() -> None:
    backend = LoopingPagesBackend()
    event = LocalRunner(one_step, backend).event(start(backend))
    with pytest.raises(ExecutionStateError, match="pages loop") as caught:
        await asyncio.wait_for(
            one_step.invoke_async(event, FakeLambdaContext(), client=backend), 30
        )
    assert caught.value.retryable is True


@pytest.mark.anyio
async def test_an_operation_listed_twice_in_the_event_is_refused() -> None:
    backend = MemoryBackend()
    step = {"Id": "s1", "Type": "STEP", "Status": "SUCCEEDED", "StepDetails": {"Result": "1"}}
    with pytest.raises(InvalidEventError, match="more than once: s1"):
        await one_step.invoke_async(event_with([EXECUTION_OP, step, step]), client=backend)
    assert backend.checkpoint_calls == []


class PagedBackend(MemoryBackend):
    """Answers the event's NextMarker with a page repeating an operation of the event."""

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        from durable_async._wire.converter import from_wire

        return from_wire({"Operations": [EXECUTION_OP]}, ExecutionStatePage)


@pytest.mark.anyio
async def test_an_operation_listed_on_two_pages_is_refused() -> None:
    backend = PagedBackend()
    with pytest.raises(InvalidEventError, match="across state pages"):
        await one_step.invoke_async(event_with([EXECUTION_OP], marker="p2"), client=backend)
    assert backend.checkpoint_calls == []


class RaisingPagesBackend(MemoryBackend):
    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        raise KeyError("a custom client's bug")


@pytest.mark.anyio
async def test_a_custom_client_raising_while_paging_is_a_typed_retryable_error() -> None:
    backend = RaisingPagesBackend()
    with pytest.raises(ExecutionStateError, match="client raised KeyError") as caught:
        await one_step.invoke_async(event_with([EXECUTION_OP], marker="p2"), client=backend)
    assert caught.value.retryable is True


# -- what a handler may do wrong ---------------------------------------------------------


async def forty_two() -> int:
    return 42


@pytest.mark.anyio
async def test_a_handler_returning_a_coroutine_fails_with_a_hint_and_no_warning() -> None:
    @durable_execution
    async def forgot_await(event: Any, ctx: DurableContext) -> Any:
        return forty_two()  # not awaited

    result = await LocalRunner(forgot_await).run()
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.message is not None
    assert "returned coroutine 'forty_two'" in result.error.message
    assert "return await" in result.error.message
    # filterwarnings=error: a "coroutine was never awaited" warning would fail this test.


# -- fuzzed events -----------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_enum_text = st.sampled_from(
    ["EXECUTION", "STEP", "WAIT", "CALLBACK", "CONTEXT", "CHAINED_INVOKE", "STARTED",
     "SUCCEEDED", "FAILED", "PENDING", "READY", "TIMED_OUT", "CANCELLED", "STOPPED", "X"]
)  # fmt: skip
_operation = st.fixed_dictionaries(
    {},
    optional={
        "Id": st.sampled_from(["exec", "s1", "c4ca4238a0b92382", ""]) | _json,
        "Type": _enum_text | _json,
        "Status": _enum_text | _json,
        "Name": st.text(max_size=5) | _json,
        "ParentId": st.none() | st.text(max_size=5),
        "StartTimestamp": st.integers() | st.floats() | st.text(max_size=5),
        "ExecutionDetails": st.fixed_dictionaries({}, optional={"InputPayload": _json}),
        "StepDetails": _json | st.fixed_dictionaries({}, optional={"Result": _json}),
        "WaitDetails": _json,
        "CallbackDetails": _json,
        "ContextDetails": _json,
    },
)
_events = st.one_of(
    _json,
    st.fixed_dictionaries(
        {"DurableExecutionArn": st.just(ARN) | _json, "CheckpointToken": st.just("t") | _json},
        optional={
            "InitialExecutionState": _json
            | st.fixed_dictionaries(
                {"Operations": st.lists(_operation, max_size=4)},
                optional={"NextMarker": st.none() | st.text(max_size=3) | _json},
            )
        },
    ),
)


@settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(event=_events)
# Found by this test: a NextMarker that is not a string crashed the page loop (TypeError).
@example(event=event_with([], marker=[None]))
def test_any_event_gets_an_output_or_a_typed_error(event: Any) -> None:
    """The SDK never crashes on an event: it answers with an output or raises DurableError."""

    async def invoke() -> Any:
        return await one_step.invoke_async(event, FakeLambdaContext(), client=MemoryBackend())

    try:
        output = asyncio.run(invoke())
    except DurableError:
        return
    assert isinstance(output, dict)
    assert output["Status"] in ("SUCCEEDED", "FAILED", "PENDING")
    json.dumps(output)
