"""``durable_async.aiohttp``: a ``CallbackClient`` that lives as long as the application.

A real aiohttp server on loopback (aiohttp's ``TestServer``); the full webhook round trip
against dex-local-runner is in ``test_examples.py`` (the approval service).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from dex_harness import REGION
from support import without_aws_credentials

from durable_async import ValidationError
from durable_async.aiohttp import CALLBACK_CLIENT, callback_client_ctx
from durable_async.callbacks import CallbackClient, CallbackSendError

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("fake_aws_env")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def answer(request: web.Request) -> web.Response:
    callbacks = request.app[CALLBACK_CLIENT]
    try:
        await callbacks.succeed(request.match_info["callback_id"], "yes")
    except ValidationError as error:
        return web.json_response({"error": str(error)}, status=400)
    return web.Response(status=204)


async def test_the_client_is_open_while_the_app_runs_and_closed_at_cleanup() -> None:
    seen: list[CallbackClient] = []
    app = web.Application()
    app.cleanup_ctx.append(callback_client_ctx(endpoint_url="http://127.0.0.1:9"))
    app.router.add_post("/callbacks/{callback_id}", answer)

    async def remember(app: web.Application) -> None:
        seen.append(app[CALLBACK_CLIENT])

    app.on_startup.append(remember)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        (callbacks,) = seen
        assert isinstance(callbacks, CallbackClient)
        response = await client.post("/callbacks/not%20an%20id")
        assert response.status == 400
        assert "not a callback ID" in (await response.json())["error"]
        assert callbacks._open
    assert not callbacks._open  # cleanup closed it
    with pytest.raises(RuntimeError, match="async with"):
        await callbacks.heartbeat("abc")


async def test_several_clients_under_their_own_keys() -> None:
    other: web.AppKey[CallbackClient] = web.AppKey("other", CallbackClient)
    app = web.Application()
    app.cleanup_ctx.append(callback_client_ctx(endpoint_url="http://127.0.0.1:9"))
    app.cleanup_ctx.append(
        callback_client_ctx(key=other, endpoint_url="http://127.0.0.1:9", region_name=REGION)
    )
    clients: list[Any] = []

    async def remember(app: web.Application) -> None:
        clients.extend([app[CALLBACK_CLIENT], app[other]])

    app.on_startup.append(remember)
    async with TestClient(TestServer(app, host="127.0.0.1")):
        first, second = clients
        assert first is not second
        assert first._open
        assert second._open


async def test_missing_configuration_stops_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    app = web.Application()
    app.cleanup_ctx.append(callback_client_ctx())
    runner = web.AppRunner(app)
    with pytest.raises(CallbackSendError, match="region"):
        await runner.setup()
    await runner.cleanup()


async def test_missing_credentials_stop_startup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_aws_credentials(monkeypatch, tmp_path)
    app = web.Application()
    app.cleanup_ctx.append(callback_client_ctx(endpoint_url="http://127.0.0.1:9"))
    app.router.add_post("/callbacks/{callback_id}", answer)
    server = TestServer(app, host="127.0.0.1")
    try:
        with pytest.raises(CallbackSendError, match="no AWS credentials") as caught:
            await server.start_server()
    finally:
        await server.close()
    assert type(caught.value) is CallbackSendError
    assert caught.value.retryable is False
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)  # says where they are looked up

    # With credentials in the environment (and nothing cached from the failure) it starts.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    app = web.Application()
    app.cleanup_ctx.append(callback_client_ctx(endpoint_url="http://127.0.0.1:9"))
    app.router.add_post("/callbacks/{callback_id}", answer)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post("/callbacks/not%20an%20id")
        assert response.status == 400
        assert app[CALLBACK_CLIENT]._open
