"""The SDK's aiobotocore HTTP session: no TLS setup for a plain-HTTP endpoint.

Against a real aiohttp server on 127.0.0.1 that answers ``CheckpointDurableExecution``.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from durable_async._client._http import SdkHTTPSession
from durable_async._client.aiobotocore import AioBotocoreClient
from durable_async._wire.models import CheckpointRequest

pytestmark = pytest.mark.anyio


@pytest.fixture
async def checkpoint_server() -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []

    async def checkpoint(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"CheckpointToken": "token-2"})

    app = web.Application()
    app.router.add_post("/2025-12-01/durable-executions/{arn}/checkpoint", checkpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


@pytest.fixture
def ssl_builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record aiobotocore's TLS context builds instead of loading the CA bundle."""
    builds: list[Any] = []

    def build(self: SdkHTTPSession, proxy_url: str | None) -> tuple[ssl.SSLContext, None]:
        builds.append(proxy_url)
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), None

    monkeypatch.setattr(SdkHTTPSession, "_build_ssl_contexts", build)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    return builds


async def test_checkpoints_to_a_plain_http_endpoint_build_no_tls_context(
    checkpoint_server: tuple[str, list[str]], ssl_builds: list[Any]
) -> None:
    url, seen = checkpoint_server
    client = AioBotocoreClient(endpoint_url=url, region_name="us-west-2")
    try:
        request = CheckpointRequest(
            durable_execution_arn="arn:aws:lambda:us-west-2:1:function:f",
            checkpoint_token="t",
            updates=(),
        )
        for _ in range(2):
            response = await client.checkpoint(request, logging.getLogger("test"))
            assert response.checkpoint_token == "token-2"
    finally:
        await client.aclose()
    assert len(seen) == 2
    assert ssl_builds == []


async def test_an_https_endpoint_still_gets_aiobotocores_tls_context(
    ssl_builds: list[Any],
) -> None:
    session = SdkHTTPSession()
    async with session:
        connector = await session._create_connector(None)
        await connector.close()
    assert ssl_builds == [None]
