"""An aiohttp service that starts approval workflows and completes their callbacks by webhook.

Routes:

* ``POST /documents`` ``{"document": "q3.pdf"}`` starts ``examples/human_approval.py``'s
  workflow (202, ``{"execution": ARN}``), telling it to request its review here.
* ``POST /reviews`` ``{"callback_id": ..., "document": ...}`` is where the workflow's
  submitter step hands over its callback; the service files it under a review ID, so
  callback IDs (bearer tokens for the callback) never appear in URLs or listings.
* ``GET /reviews`` lists open reviews: ``[{"review": ID, "document": ...}]``.
* ``POST /reviews/{review}`` ``{"approved": true}`` (or ``false`` with a ``reason``) is the
  webhook a reviewer's tool calls; it completes the workflow's callback through
  ``CallbackClient`` (``SendDurableExecutionCallbackSuccess``): 204 when delivered,
  404 for an unknown review, 409 when the callback already completed or timed out.

The ``CallbackClient`` is opened at startup and closed at cleanup by
``durable_async.aiohttp.callback_client_ctx``. How executions start is passed in: on AWS,
``start_on_lambda`` invokes the durable function asynchronously (``Invoke`` with
``DurableExecutionName``); the tests start them on AWS's dex-local-runner. Run against AWS::

    APPROVAL_FUNCTION=approval:live python examples/approval_service.py
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from durable_async import ValidationError
from durable_async.aiohttp import CALLBACK_CLIENT, callback_client_ctx
from durable_async.callbacks import CallbackClosedError, CallbackNotFoundError, CallbackSendError

#: Starts one execution of the approval workflow with this input; returns its ARN.
Starter = Callable[[dict[str, Any]], Awaitable[str]]


@attrs.frozen
class Review:
    document: str
    callback_id: str


class ReviewDesk:
    """Open reviews by review ID; ``wait_for(n)`` lets a caller wait until ``n`` arrived."""

    def __init__(self) -> None:
        self.open: dict[str, Review] = {}
        self._filed = 0
        self._changed = asyncio.Condition()

    async def file(self, review: Review) -> str:
        review_id = uuid.uuid4().hex
        async with self._changed:
            self.open[review_id] = review
            self._filed += 1
            self._changed.notify_all()
        return review_id

    async def wait_for(self, filed: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._filed >= filed)


DESK = web.AppKey("desk", ReviewDesk)
STARTER: web.AppKey[Starter] = web.AppKey("starter")
PUBLIC_URL = web.AppKey("public_url", str)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def start_document(request: web.Request) -> web.Response:
    body = await _json_object(request)
    document = body.get("document")
    if not isinstance(document, str) or not document:
        raise web.HTTPBadRequest(text="'document' must be a non-empty string")
    public_url = request.app.get(PUBLIC_URL) or str(request.url.origin())
    review_url = f"{public_url}/reviews"
    arn = await request.app[STARTER]({"document": document, "review_url": review_url})
    return web.json_response({"execution": arn}, status=202)


async def file_review(request: web.Request) -> web.Response:
    body = await _json_object(request)
    callback_id, document = body.get("callback_id"), body.get("document")
    if not isinstance(callback_id, str) or not isinstance(document, str):
        raise web.HTTPBadRequest(text="'callback_id' and 'document' must be strings")
    review_id = await request.app[DESK].file(Review(document, callback_id))
    return web.json_response({"review": review_id}, status=201)


async def list_reviews(request: web.Request) -> web.Response:
    reviews = [{"review": rid, "document": r.document} for rid, r in request.app[DESK].open.items()]
    return web.json_response(reviews)


async def decide(request: web.Request) -> web.Response:
    """The webhook: complete the review's callback with the reviewer's decision."""
    desk = request.app[DESK]
    review_id = request.match_info["review"]
    review = desk.open.get(review_id)
    if review is None:
        raise web.HTTPNotFound(text="no such review")
    body = await _json_object(request)
    if not isinstance(body.get("approved"), bool):
        raise web.HTTPBadRequest(text="'approved' must be true or false")
    decision = {"approved": body["approved"], "reason": str(body.get("reason", ""))}
    try:
        await request.app[CALLBACK_CLIENT].succeed(review.callback_id, decision)
    except CallbackClosedError:
        desk.open.pop(review_id, None)  # answered before, or timed out: nothing to do now
        raise web.HTTPConflict(text="this review was already closed") from None
    except (CallbackNotFoundError, ValidationError):
        desk.open.pop(review_id, None)
        raise web.HTTPNotFound(text="the workflow no longer waits for this review") from None
    except CallbackSendError as error:
        # Throttled or unreachable: the review stays open, the reviewer's tool retries.
        unavailable = web.HTTPServiceUnavailable if error.retryable else web.HTTPBadGateway
        raise unavailable(text="could not deliver the decision") from None
    desk.open.pop(review_id, None)
    return web.Response(status=204)


def make_app(
    start: Starter, public_url: str | None = None, **callback_options: Any
) -> web.Application:
    """The service; ``callback_options`` go to its ``CallbackClient`` (``endpoint_url``...).

    ``public_url`` is where workflows reach the service (default: the origin of the
    request that started them).
    """
    app = web.Application()
    app[DESK] = ReviewDesk()
    app[STARTER] = start
    if public_url:
        app[PUBLIC_URL] = public_url.rstrip("/")
    app.cleanup_ctx.append(callback_client_ctx(**callback_options))
    app.router.add_post("/documents", start_document)
    app.router.add_post("/reviews", file_review)
    app.router.add_get("/reviews", list_reviews)
    app.router.add_post("/reviews/{review}", decide)
    return app


def start_on_lambda(function_name: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry whose starter invokes ``function_name`` asynchronously."""

    async def lambda_starter(app: web.Application) -> AsyncIterator[None]:
        import json

        from aiobotocore.session import get_session

        async with get_session().create_client("lambda") as lam:

            async def start(event: dict[str, Any]) -> str:
                response = await lam.invoke(
                    FunctionName=function_name,
                    InvocationType="Event",
                    DurableExecutionName=f"approval-{uuid.uuid4().hex}",
                    Payload=json.dumps(event).encode(),
                )
                return str(response.get("DurableExecutionArn", ""))

            app[STARTER] = start
            yield

    return lambda_starter


def main() -> None:
    async def not_started(event: dict[str, Any]) -> str:
        raise web.HTTPServiceUnavailable(text="no starter configured")

    port = int(os.environ.get("PORT", "8080"))
    app = make_app(not_started, os.environ.get("PUBLIC_URL"))
    app.cleanup_ctx.append(start_on_lambda(os.environ["APPROVAL_FUNCTION"]))
    web.run_app(app, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
