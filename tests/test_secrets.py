"""No secret in an error or a log: checkpoint tokens, callback IDs and credentials.

The transport cases run aiobotocore for real against a loopback port nobody listens on,
so botocore builds the very message (the request URL, checkpoint token in its query
string) that used to be copied into ``ExecutionStateError``. The fault-injecting proxy
tests (tests/faults/test_proxy_faults.py) check the same over every fault they inject.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from support import every_log_record

from durable_async import (
    AioBotocoreClient,
    CheckpointError,
    DurableContext,
    ExecutionStateError,
    durable_execution,
)
from durable_async._redact import REDACTED, redact
from durable_async._wire.models import (
    CallbackDetails,
    CheckpointRequest,
    CheckpointResponse,
    GetExecutionStateRequest,
    InvocationInput,
)
from durable_async.testing import (
    FakeLambdaContext,
    LocalRunner,
    MemoryBackend,
    SqliteBackend,
    StoreError,
)

TOKEN = "Q2hlY2twb2ludCtUb2tlbi9zZWNyZXQ="  # base64-ish, with + / = to test URL encoding
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontoken"
ARN = "arn:aws:lambda:us-west-2:123456789012:function:f:$LATEST/durable-execution/e/1"
SECRETS = (TOKEN, SECRET_KEY, SESSION_TOKEN, ACCESS_KEY)


def leaks(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """The secrets found in ``text``, verbatim or percent-encoded."""
    from urllib.parse import quote

    return [s for s in secrets if s in text or quote(s, safe="") in text]


def everything_printed(error: BaseException) -> str:
    """What Lambda's runtime prints for an error: message, repr, chained traceback."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def every_record() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger, at every level, while the test runs."""
    with every_log_record() as records:
        yield records


def sdk_text(records: list[logging.LogRecord]) -> str:
    """The formatted records the SDK itself emitted (botocore's own DEBUG dumps aside)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(
        formatter.format(r) for r in records if r.name.startswith(("durable_async", "tests"))
    )


def client_for(port: int) -> AioBotocoreClient:
    return AioBotocoreClient(
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-west-2",
        connect_timeout=1,
        read_timeout=1,
        max_attempts=1,
    )


def test_redact_removes_query_strings_secrets_sigv4_and_response_bodies() -> None:
    url = f'"http://h:1/2025-12-01/durable-executions/x/state?CheckpointToken={TOKEN}&Marker=m"'
    assert redact(f"Could not connect to the endpoint URL: {url}") == (
        f'Could not connect to the endpoint URL: "http://h:1/2025-12-01/durable-executions'
        f'/x/state?{REDACTED}"'
    )
    assert TOKEN not in redact(f"token {TOKEN} was stale", (TOKEN,))
    assert "%2B" not in redact("t=Q2hl%2BY2s%3D", ("Q2hl+Y2s=",))
    signed = f"Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/x, Signature=abc123"
    assert leaks(redact(signed)) == []
    assert "abc123" not in redact(signed)
    assert redact('Unable to parse response, Response body:\nb\'{"CallbackId": "cb"}\'') == (
        f"Unable to parse response, Response body: {REDACTED}"
    )
    assert redact('{"CallbackId": "c4llb4ck"}') == f'{{"CallbackId": "{REDACTED}"}}'
    assert redact("nothing to hide, tok") == "nothing to hide, tok"
    assert redact("a b c", ("a",)) == "a b c"  # too short to be a secret: words survive


def test_models_and_callbacks_never_show_tokens_or_callback_ids_in_their_repr() -> None:
    shown = "\n".join(
        repr(model)
        for model in (
            CheckpointRequest(ARN, TOKEN, (), client_token="ct"),
            CheckpointResponse(checkpoint_token=TOKEN),
            GetExecutionStateRequest(ARN, TOKEN, "marker"),
            InvocationInput(ARN, TOKEN),
            CallbackDetails(callback_id=TOKEN),
        )
    )
    assert leaks(shown) == []
    assert shown.count(REDACTED) == 5
    assert "CheckpointResponse(checkpoint_token=None" in repr(CheckpointResponse())


@pytest.mark.anyio
@pytest.mark.usefixtures("fake_credentials")
async def test_a_failed_state_read_does_not_quote_the_token_in_its_error(
    closed_port: int, every_record: list[logging.LogRecord]
) -> None:
    client = client_for(closed_port)
    try:
        with pytest.raises(ExecutionStateError) as caught:
            await client.get_execution_state(
                GetExecutionStateRequest(ARN, TOKEN, "next-page"), logging.getLogger("tests")
            )
        with pytest.raises(CheckpointError) as checkpoint:
            await client.checkpoint(CheckpointRequest(ARN, TOKEN, ()), logging.getLogger("tests"))
    finally:
        await client.aclose()
    error = caught.value
    assert error.retryable is True
    # Still says what went wrong, and where.
    assert "EndpointConnectionError" in str(error)
    assert f"127.0.0.1:{closed_port}" in str(error)
    assert f"/state?{REDACTED}" in str(error)
    for failure in (error, checkpoint.value):
        assert leaks(everything_printed(failure)) == [], everything_printed(failure)
        # botocore's exception (its message quotes the URL) is neither cause nor context.
        assert failure.__cause__ is None
        assert failure.__context__ is None
    assert leaks(sdk_text(every_record)) == []


@pytest.mark.anyio
@pytest.mark.usefixtures("fake_credentials")
async def test_an_invocation_failing_to_page_in_state_raises_without_the_token(
    closed_port: int, every_record: list[logging.LogRecord]
) -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return "unreachable"

    event = {
        "DurableExecutionArn": ARN,
        "CheckpointToken": TOKEN,
        "InitialExecutionState": {"Operations": [], "NextMarker": "page-2"},
    }
    client = client_for(closed_port)
    try:
        with pytest.raises(ExecutionStateError) as caught:
            await handler.invoke_async(event, FakeLambdaContext(), client=client)
    finally:
        await client.aclose()
    assert caught.value.retryable is True  # Lambda retries the invocation
    assert leaks(everything_printed(caught.value)) == []
    assert leaks(sdk_text(every_record)) == []


@pytest.mark.anyio
async def test_callback_ids_tokens_and_payloads_stay_out_of_the_sdks_records(
    every_record: list[logging.LogRecord],
) -> None:
    """A callback's life, a failing step and a timed-out callback, every record captured.

    No record of any level names a callback ID or a checkpoint token; the execution's input
    and a step's result (payloads) appear in no record above DEBUG.
    """
    from durable_async import CallbackConfig, CallbackTimeoutError, StepContext
    from durable_async._wire.enums import OperationType
    from durable_async.testing import LocalRunner, MemoryBackend

    secret_input = {"card": "4111-1111-PAYLOAD-INPUT"}
    secret_result = "PAYLOAD-RESULT-c0ffee"
    shown: list[str] = []

    async def charge(step: StepContext) -> str:
        step.logger.info("charging")
        return secret_result

    async def flaky(step: StepContext) -> str:
        raise RuntimeError("the card network is down")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        receipt = await ctx.step(charge)
        callback = await ctx.create_callback(name="approval")
        shown.append(repr(callback))
        ctx.logger.info("waiting for approval: %r", callback)
        approval = await callback.result()
        late = await ctx.create_callback(name="late", config=CallbackConfig(timeout=5))
        try:
            await late.result()
        except CallbackTimeoutError as exc:
            shown.append(repr(exc))
            shown.extend(traceback.format_exception(exc))
        try:
            await ctx.step(flaky, name="flaky")
        except Exception as exc:
            shown.extend(traceback.format_exception(exc))
        return f"{receipt}:{approval}"

    backend = MemoryBackend()
    runner = LocalRunner(handler, backend)
    first = await runner.run(secret_input)
    assert first.status == "PENDING"
    [approval_id] = [
        op.callback_details.callback_id
        for op in backend.executions[first.arn].operations.values()
        if op.type is OperationType.CALLBACK and op.callback_details is not None
    ]
    assert approval_id
    backend.complete_callback(approval_id, '"yes"')
    final = await runner.resume(first.arn)
    assert final.status in ("SUCCEEDED", "FAILED")

    ids = {
        op.callback_details.callback_id
        for op in backend.executions[first.arn].operations.values()
        if op.callback_details is not None and op.callback_details.callback_id
    }
    assert len(ids) == 2
    tokens = {call.checkpoint_token for call in backend.checkpoint_calls}
    secrets = tuple(ids | tokens)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s")
    sdk_records = [r for r in every_record if r.name.startswith("durable_async")]
    assert sdk_records  # the step's and the context's loggers did log
    everything = "\n".join([*(formatter.format(r) for r in sdk_records), *shown])
    assert [s for s in secrets if s in everything] == []
    above_debug = "\n".join(formatter.format(r) for r in sdk_records if r.levelno > logging.DEBUG)
    assert secret_result not in above_debug
    assert secret_input["card"] not in above_debug


@pytest.mark.anyio
async def test_the_local_backend_names_an_ended_callback_by_its_operation_not_its_id() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approval")
        return await callback.result()

    backend = MemoryBackend()
    runner = LocalRunner(handler, backend)
    first = await runner.run()
    [callback_id] = backend.open_callbacks(first.arn)
    backend.complete_callback(callback_id, '"yes"')
    messages = []
    with pytest.raises(ValueError, match="already ended") as caught:
        backend.complete_callback(callback_id, '"again"')
    messages.append(str(caught.value))
    with pytest.raises(ValueError, match="already ended") as caught:
        backend.heartbeat_callback(callback_id)
    messages.append(str(caught.value))
    with pytest.raises(KeyError) as unknown:
        backend.heartbeat_callback(callback_id[::-1])
    messages.append(str(unknown.value))
    assert messages[0] == "this callback (operation 'approval') already ended (SUCCEEDED)"
    assert messages[0] == messages[1]
    assert not [m for m in messages if callback_id in m or callback_id[::-1] in m]


def test_the_sqlite_store_never_quotes_an_unknown_callback_id(tmp_path: Any) -> None:
    with SqliteBackend(tmp_path / "store.sqlite3") as store:
        with pytest.raises(StoreError) as completing:
            store.complete_callback(TOKEN, '"x"')
        with pytest.raises(StoreError) as heartbeating:
            store.heartbeat_callback(TOKEN)
    for caught in (completing, heartbeating):
        text = str(caught.value)
        assert "no callback with that ID" in text
        assert TOKEN not in text
        assert quote(TOKEN, safe="") not in text
