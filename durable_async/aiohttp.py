"""aiohttp integration: one ``CallbackClient`` per application, opened and closed with it.

::

    from aiohttp import web
    from durable_async.aiohttp import CALLBACK_CLIENT, callback_client_ctx

    async def approve(request: web.Request) -> web.Response:
        callbacks = request.app[CALLBACK_CLIENT]
        await callbacks.succeed(request.match_info["callback_id"], {"approved": True})
        return web.Response(status=204)

    app = web.Application()
    app.cleanup_ctx.append(callback_client_ctx())
    app.router.add_post("/callbacks/{callback_id}/approve", approve)

The client is created, and its credentials resolved, when the application starts (so a
missing region or missing credentials stop startup with ``CallbackSendError`` instead of
failing the first webhook) and closed at cleanup; it lives under a typed
``web.AppKey``. aiohttp comes with aiobotocore, so this adds no dependency; importing
``durable_async`` never imports this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from durable_async.callbacks import CallbackClient

__all__ = ["CALLBACK_CLIENT", "callback_client_ctx"]

#: Where ``callback_client_ctx`` puts the application's ``CallbackClient``.
CALLBACK_CLIENT: web.AppKey[CallbackClient] = web.AppKey("durable_async.callback_client")


def callback_client_ctx(
    *,
    key: web.AppKey[CallbackClient] = CALLBACK_CLIENT,
    **client_options: Any,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry that opens a ``CallbackClient`` under ``key``.

    ``client_options`` go to ``CallbackClient`` (``endpoint_url``, ``region_name``,
    ``serdes``, timeouts). Pass another ``key`` to hold several clients (two regions, say).
    """

    async def callback_client(app: web.Application) -> AsyncIterator[None]:
        async with CallbackClient(**client_options) as client:
            app[key] = client
            yield

    return callback_client
