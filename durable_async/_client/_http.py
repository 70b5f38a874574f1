"""aiobotocore's aiohttp session, minus the TLS setup a plain-HTTP endpoint never uses.

aiobotocore builds a TLS context for every new connection pool, loading the whole CA
bundle from disk in a worker thread, before its first request, even when the endpoint is
``http://`` (a local runner, as in tests and benchmarks): a thread start and a file
parse on the first invocation's path for nothing. This session skips that for plain
HTTP (verification stays aiohttp's default should anything ask for TLS); for HTTPS, a
proxy or a client certificate it is aiobotocore's own behaviour unchanged.

Imported only by the aiobotocore backend, when it builds its client.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession


class SdkHTTPSession(AIOHTTPSession):  # type: ignore[misc]
    """``AIOHTTPSession`` that opens plain-HTTP connection pools without a TLS context."""

    _plain_http = False

    async def send(self, request: Any) -> Any:
        # The endpoint is fixed per client, so the first request tells the pool's scheme.
        self._plain_http = str(request.url).startswith("http://")
        return await super().send(request)

    async def _create_connector(self, proxy_url: str | None) -> Any:
        if self._plain_http and proxy_url is None and not self._cert_file:
            return aiohttp.TCPConnector(limit=self._max_pool_connections, **self._connector_args)
        return await super()._create_connector(proxy_url)
