"""``durable_async.callbacks.CallbackClient``: the external side of callbacks.

Calls go over real HTTP to AWS's dex-local-runner, which serves the
``SendDurableExecutionCallback*`` APIs and resumes the waiting workflow (an aiohttp
Lambda-Invoke endpoint on this test's loop runs it). Tests that send nothing run without it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from aiobotocore.session import get_session
from dex_harness import (
    REGION,
    DexRunner,
    InvokeEndpoint,
    history,
    wait_terminal,
)
from support import without_aws_credentials

from durable_async import (
    AioBotocoreClient,
    CallbackFailedError,
    DurableContext,
    JsonSerDes,
    PayloadTooLargeError,
    StepContext,
    ValidationError,
    durable_execution,
)
from durable_async.callbacks import (
    CallbackClient,
    CallbackClosedError,
    CallbackNotFoundError,
    CallbackSendError,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("fake_aws_env")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class AwaitingCallback:
    """A workflow that hands out one callback ID and returns what the callback delivers."""

    def __init__(self, runner: DexRunner, **callback_options: Any) -> None:
        self.runner = runner
        self.ids: asyncio.Queue[str] = asyncio.Queue()
        ids = self.ids

        async def hand_out(step: StepContext, callback_id: str) -> None:
            ids.put_nowait(callback_id)

        @durable_execution
        async def workflow(event: Any, ctx: DurableContext) -> Any:
            callback = await ctx.create_callback(name="answer", **callback_options)
            await ctx.step(hand_out, callback.callback_id, name="hand-out")
            try:
                return {"result": await callback.result()}
            except CallbackFailedError as error:
                return {"failed": [error.error_type, error.message, error.data]}

        self.workflow = workflow
        self.client = AioBotocoreClient(endpoint_url=runner.url, region_name=REGION)

    async def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self.workflow.invoke_async(event, None, client=self.client)


@pytest.fixture
async def lambda_api(dex_runner: DexRunner) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "lambda", endpoint_url=dex_runner.url, region_name=REGION
    ) as lam:
        yield lam


async def run_answered(
    runner: DexRunner, lam: Any, answer: Any, **callback_options: Any
) -> tuple[dict[str, Any], str]:
    """Start the workflow, let ``answer(callback_id)`` reply, return the outcome."""
    flow = AwaitingCallback(runner, **callback_options)
    try:
        async with InvokeEndpoint({"workflow": flow.invoke}) as endpoint:
            arn = await asyncio.to_thread(
                runner.start_execution, "workflow", {}, lambda_endpoint=endpoint.url
            )
            callback_id = await asyncio.wait_for(flow.ids.get(), 30)
            await answer(callback_id)
            described = await wait_terminal(lam, arn)
    finally:
        await flow.client.aclose()
    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED", described
    return json.loads(described["Result"]), arn


@pytest.mark.runner
async def test_succeed_sends_a_value_as_json_the_workflow_decodes(
    dex_runner: DexRunner, lambda_api: Any
) -> None:
    async def answer(callback_id: str) -> None:
        async with CallbackClient(endpoint_url=dex_runner.url) as callbacks:
            await callbacks.succeed(callback_id, {"approved": True, "by": "ana"})

    outcome, _ = await run_answered(dex_runner, lambda_api, answer, serdes=JsonSerDes())
    assert outcome == {"result": {"approved": True, "by": "ana"}}


@pytest.mark.runner
@pytest.mark.parametrize("raw", ["plain text, not JSON", b"raw bytes \xc3\xa9"])
async def test_succeed_sends_str_and_bytes_as_they_are(
    dex_runner: DexRunner, lambda_api: Any, raw: str | bytes
) -> None:
    async def answer(callback_id: str) -> None:
        async with CallbackClient(endpoint_url=dex_runner.url) as callbacks:
            await callbacks.succeed(callback_id, raw)

    outcome, _ = await run_answered(dex_runner, lambda_api, answer)
    expected = raw.decode() if isinstance(raw, bytes) else raw
    assert outcome == {"result": expected}  # no serdes: the workflow gets the raw string


@pytest.mark.runner
async def test_fail_raises_callback_failed_error_with_the_senders_fields(
    dex_runner: DexRunner, lambda_api: Any
) -> None:
    async def answer(callback_id: str) -> None:
        async with CallbackClient(endpoint_url=dex_runner.url) as callbacks:
            await callbacks.fail(
                callback_id, error_type="Rejected", message="over budget", data='{"limit": 5}'
            )

    outcome, arn = await run_answered(dex_runner, lambda_api, answer)
    assert outcome == {"failed": ["Rejected", "over budget", '{"limit": 5}']}
    events = await history(lambda_api, arn)
    assert "CallbackFailed" in [e["EventType"] for e in events]


@pytest.mark.runner
async def test_heartbeat_is_accepted_while_open_and_a_second_answer_is_closed(
    dex_runner: DexRunner, lambda_api: Any
) -> None:
    closed: list[BaseException] = []

    async def answer(callback_id: str) -> None:
        async with CallbackClient(endpoint_url=dex_runner.url) as callbacks:
            await callbacks.heartbeat(callback_id)
            await callbacks.succeed(callback_id, "first")
            for late in (
                callbacks.succeed(callback_id, "second"),
                callbacks.fail(callback_id, message="too late"),
                callbacks.heartbeat(callback_id),
            ):
                with pytest.raises(CallbackClosedError) as caught:
                    await late
                closed.append(caught.value)

    outcome, _ = await run_answered(dex_runner, lambda_api, answer, heartbeat_timeout=60)
    assert outcome == {"result": "first"}
    assert len(closed) == 3
    for error in closed:
        assert isinstance(error, CallbackSendError)
        assert error.retryable is False
        assert error.status_code == 404  # dex-local-runner; the service says 400


@pytest.mark.runner
async def test_an_unknown_callback_raises_callback_not_found(dex_runner: DexRunner) -> None:
    unknown = "dW5rbm93biBjYWxsYmFjaw=="  # well-formed base64, no such callback
    async with CallbackClient(endpoint_url=dex_runner.url) as callbacks:
        for call in (
            callbacks.succeed(unknown, {"x": 1}),
            callbacks.fail(unknown, message="no"),
            callbacks.heartbeat(unknown),
        ):
            with pytest.raises(CallbackNotFoundError) as caught:
                await call
            assert caught.value.retryable is False
            assert unknown not in str(caught.value)


async def test_malformed_ids_and_oversized_results_fail_before_anything_is_sent() -> None:
    # Port 9 (discard) has no listener: a request would fail as CallbackSendError.
    async with CallbackClient(endpoint_url="http://127.0.0.1:9", region_name=REGION) as client:
        for bad in ("", "not base64!", "x" * 1025):
            with pytest.raises(ValidationError, match="not a callback ID") as caught:
                await client.succeed(bad, "x")
            assert not bad or bad not in str(caught.value)
        with pytest.raises(ValidationError, match="a callback ID is a str"):
            await client.heartbeat(b"abc")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="error_type must be a str"):
            await client.fail("abc", error_type=ValueError)  # type: ignore[arg-type]
        with pytest.raises(PayloadTooLargeError):
            await client.succeed("abc", b"x" * (1024 * 1024 + 1))


async def test_a_network_failure_is_a_retryable_callback_send_error() -> None:
    async with CallbackClient(
        endpoint_url="http://127.0.0.1:9", region_name=REGION, max_attempts=1, connect_timeout=2
    ) as client:
        with pytest.raises(CallbackSendError) as caught:
            await client.succeed("abc", "x")
    assert type(caught.value) is CallbackSendError
    assert caught.value.retryable is True


@pytest.mark.parametrize("callback_id", ["ab/cdef+gh==", "a+b/c+d/e="])
async def test_a_send_error_never_quotes_the_callback_id_in_any_encoding(
    callback_id: str,
) -> None:
    # botocore percent-encodes the ID into the URL the connection error quotes.
    async with CallbackClient(
        endpoint_url="http://127.0.0.1:9", region_name=REGION, max_attempts=1, connect_timeout=2
    ) as client:
        with pytest.raises(CallbackSendError) as caught:
            await client.succeed(callback_id, "x")
    text = str(caught.value)
    assert "<callback id>" in text
    for form in (callback_id, quote(callback_id, safe=""), quote_plus(callback_id)):
        assert form not in text


async def test_the_client_is_used_inside_async_with_only() -> None:
    client = CallbackClient(endpoint_url="http://127.0.0.1:9", region_name=REGION)
    with pytest.raises(RuntimeError, match="async with"):
        await client.succeed("abc", "x")
    async with client:
        with pytest.raises(RuntimeError, match="already open"):
            await client.__aenter__()
    with pytest.raises(RuntimeError, match="async with"):
        await client.heartbeat("abc")


async def test_missing_region_fails_on_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(CallbackSendError, match="region"):
        async with CallbackClient():
            pass


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A region, but nowhere to find credentials; returns the (empty) AWS config file."""
    without_aws_credentials(monkeypatch, tmp_path)
    return tmp_path / "config"


async def test_missing_credentials_fail_on_entry(no_credentials: Path) -> None:
    client = CallbackClient(endpoint_url="http://127.0.0.1:9")
    with pytest.raises(CallbackSendError, match="no AWS credentials were found") as caught:
        await client.__aenter__()
    assert type(caught.value) is CallbackSendError
    assert caught.value.retryable is False
    assert not client._open
    assert client._transport._client is None  # the Lambda client it created was closed
    with pytest.raises(RuntimeError, match="async with"):
        await client.heartbeat("abc")


@pytest.fixture
def unreachable_role(no_credentials: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile that assumes a role through an STS endpoint on a closed port."""
    no_credentials.write_text(
        "[default]\nrole_arn = arn:aws:iam::123456789012:role/test\nsource_profile = src\n"
        "[profile src]\naws_access_key_id = x\naws_secret_access_key = x\n"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


async def test_deferred_credentials_are_fetched_on_entry(unreachable_role: None) -> None:
    # botocore fetches an assumed role's credentials on first use; entering does it now.
    with pytest.raises(CallbackSendError, match="resolving AWS credentials failed") as caught:
        async with CallbackClient(endpoint_url="http://127.0.0.1:9"):
            pass
    assert caught.value.retryable is True


def test_importing_durable_async_imports_neither_aiohttp_nor_the_callback_client() -> None:
    code = (
        "import sys, durable_async\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'aiobotocore')\n"
        "          or m in ('durable_async.callbacks', 'durable_async.aiohttp')]\n"
        "assert not loaded, loaded\n"
        "import durable_async.callbacks\n"
        "assert 'aiohttp' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
