"""The real backend: Lambda's durable-execution API through aiobotocore.

This is the only module that imports aiobotocore or botocore, and no botocore error
leaves it: every failure becomes ``CheckpointError`` or ``ExecutionStateError`` with
``retryable`` decided here, once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, quote_plus

from durable_async._errors import (
    BackendError,
    CallbackClosedError,
    CallbackNotFoundError,
    CallbackSendError,
    CheckpointError,
    ExecutionStateError,
)
from durable_async._wire.converter import from_wire, to_wire
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)

from .base import DurableExecutionClient

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

T = TypeVar("T")
_USER_AGENT = "durable-async/0.1.0"
_STALE_TOKEN_PREFIX = "Invalid checkpoint token"
#: Error codes that arrive as 5xx but need the customer to act, so retrying is pointless.
_TERMINAL_CODES = frozenset(
    {
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
    }
)


class GarbledAnswerError(Exception):
    """The service answered 200 with a body that is not a JSON object.

    botocore would read such a body as an empty answer (no checkpoint token, no
    operations): a checkpoint would look revoked and a state page empty, silently losing
    history. Raised from botocore's ``before-parse`` event instead, so the call fails.
    """


def _check_answer(response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict.get("status_code") != 200:
        return  # error bodies are botocore's to read
    body = response_dict.get("body") or b""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        msg = f"the answer is not a JSON object ({len(body)} bytes; truncated or garbled?)"
        raise GarbledAnswerError(msg)


def _check_answers_of(client: Any) -> None:
    """Have ``client`` refuse garbled answers of the two durable-execution calls."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:
        return  # a stand-in client (tests) without botocore's event system
    for operation in ("CheckpointDurableExecution", "GetDurableExecutionState"):
        events.register(f"before-parse.lambda.{operation}", _check_answer)


def classify(code: str | None, message: str, status: int | None) -> bool:
    """Whether a failed call may succeed in a new invocation.

    Throttling, 5xx and network errors may; so does a stale checkpoint token (a new
    invocation gets a fresh one). Other 4xx errors and KMS misconfiguration may not.
    """
    if code in _TERMINAL_CODES:
        return False
    if status is None or status >= 500 or status == 429:
        return True
    # Without an x-amzn-ErrorType header (AWS's dex-local-runner sends none) botocore
    # reports the HTTP status as the code; the message still identifies a stale token.
    if code in ("InvalidParameterValueException", str(status)) and message.startswith(
        _STALE_TOKEN_PREFIX
    ):
        return True
    return not 400 <= status < 500


def _translate(
    exc: Exception, error_cls: type[BackendError], secrets: tuple[str | None, ...]
) -> BackendError:
    """``exc`` as ``error_cls``, with every secret it quotes removed.

    botocore's own exception is not chained: its message (and so any traceback that
    prints it) quotes the request URL, whose query string holds the checkpoint token. A
    service error is chained as a copy whose message is redacted, so ``__cause__`` still
    tells the code, message and HTTP status; other errors are named in the message.
    """
    # Imported on the error path only: nothing of it at cold start.
    from durable_async._redact import redact

    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    code = error.get("Code")
    raw_message = error.get("Message") or str(exc)
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    message = redact(raw_message, secrets)
    kind = code or (None if response else type(exc).__name__)
    translated = error_cls(
        f"{error_cls.operation} failed: {kind + ': ' if kind else ''}{message}",
        retryable=classify(code, raw_message, status),
        code=code,
        status_code=status,
    )
    if response:
        translated.__cause__ = _redacted_client_error(exc, response, message)
    else:
        translated.__suppress_context__ = True
    return translated


def _redacted_client_error(exc: Exception, response: dict[str, Any], message: str) -> Exception:
    """A botocore ``ClientError`` like ``exc`` whose message is redacted."""
    from botocore.exceptions import ClientError

    error = {**(response.get("Error") or {}), "Message": message}
    metadata = {
        key: value
        for key, value in (response.get("ResponseMetadata") or {}).items()
        if key in ("HTTPStatusCode", "RequestId", "RetryAttempts")
    }
    copy: Exception = ClientError(
        {"Error": error, "ResponseMetadata": metadata}, getattr(exc, "operation_name", "")
    )
    return copy


def _read(response: Any, model: type[T], error_cls: type[BackendError]) -> T:
    """``response`` as ``model``; an answer the SDK cannot read is a retryable failure.

    Retryable because the execution must not fail for it: an operation type or status from a
    newer service is read once the function runs a newer SDK.
    """
    try:
        return from_wire(response, model)
    except Exception as exc:
        from durable_async._redact import redact

        message = redact(str(exc) or type(exc).__name__)
        failure = error_cls(
            f"{error_cls.operation} failed: the answer does not fit this SDK's model: {message}",
            retryable=True,
        )
    raise failure  # outside the handler: the answer's values stay out of the traceback


_sdk_session: AioSession | None = None


def sdk_session() -> AioSession:
    """The aiobotocore session of clients built without one, made and kept on first use.

    It loads the trimmed Lambda model (see ``_loader``); keeping it means the models it
    parsed serve every later client in the process (one per event loop).
    """
    global _sdk_session
    if _sdk_session is None:
        from aiobotocore.session import get_session

        from ._loader import install

        session = get_session()
        install(session)
        parsers = session.get_component("response_parser_factory")
        parsers.set_parser_defaults(timestamp_parser=utc_timestamp)
        _sdk_session = session
    return _sdk_session


def utc_timestamp(value: Any) -> datetime:
    """A timestamp parser for botocore that answers in the one shared UTC ``tzinfo``.

    botocore's default gives every parsed timestamp a ``tzlocal()`` of its own (about
    400 bytes each); the operation log keeps two timestamps per operation, so a
    10,000-item map carried some 10 MiB of identical time zones.
    """
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError):
        from botocore.utils import parse_timestamp

        parsed: datetime = parse_timestamp(value)
        return parsed.astimezone(UTC)


def prepare() -> None:
    """Do the loop-free part of building the client now: imports, session and models.

    Called while Lambda initialises the handler module (its INIT phase, before the first
    invocation starts), so the first invocation's latency only includes opening the
    client on its loop.
    """
    from . import _http  # noqa: F401  (the client's HTTP session class)
    from ._loader import API_VERSION, SERVICE

    loader = sdk_session().get_component("data_loader")
    for type_name in ("service-2", "endpoint-rule-set-1"):
        loader.load_service_model(SERVICE, type_name, API_VERSION)


class AioBotocoreClient(DurableExecutionClient):
    """``DurableExecutionClient`` over an aiobotocore ``lambda`` client.

    Endpoint, region and credentials come from the standard AWS configuration (so
    ``AWS_ENDPOINT_URL_LAMBDA`` points it at a local runner). The botocore client is
    created on first use, on the running loop, and reused for every later call on that
    loop (warm invocations); using it from another loop raises ``RuntimeError``.
    """

    def __init__(
        self,
        *,
        session: AioSession | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 50,
        max_attempts: int = 4,
    ) -> None:
        self._session = session
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._timeouts = (connect_timeout, read_timeout)
        self._max_attempts = max_attempts
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        # A weak reference: the SDK keeps one client per loop in a weak mapping keyed by
        # the loop, so a strong one here would keep every finished loop alive.
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._opening: asyncio.Lock | None = None

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not None:
            owner = self._loop()
            if owner is loop:
                return
            if owner is not None:
                msg = (
                    "this AioBotocoreClient belongs to another event loop; create one client "
                    "per loop (the durable_execution decorator does this for you)"
                )
                raise RuntimeError(msg)
            # Its loop is gone, and the botocore client with it: start afresh here.
            self._client, self._stack, self._opening = None, None, None
        self._loop = weakref.ref(loop)

    async def _lambda(self) -> Any:
        if self._client is not None:
            return self._client
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._client is None:
                from aiobotocore.config import AioConfig

                from ._http import SdkHTTPSession

                session = self._session or sdk_session()
                config = AioConfig(
                    http_session_cls=SdkHTTPSession,
                    connect_timeout=self._timeouts[0],
                    read_timeout=self._timeouts[1],
                    retries={"mode": "standard", "total_max_attempts": self._max_attempts},
                    user_agent_extra=_USER_AGENT,
                )
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    session.create_client(
                        "lambda",
                        region_name=self._region_name,
                        endpoint_url=self._endpoint_url,
                        config=config,
                    )
                )
                _check_answers_of(self._client)
                self._stack = stack
        return self._client

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        """Call ``CheckpointDurableExecution``; botocore retries keep the ClientToken."""
        self._check_loop()
        try:
            client = await self._lambda()
            response = await client.checkpoint_durable_execution(**to_wire(params))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = _translate(exc, CheckpointError, (params.checkpoint_token,))
        else:
            return _read(response, CheckpointResponse, CheckpointError)
        raise failure  # outside the handler: botocore's exception is not its context

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        """Call ``GetDurableExecutionState`` for one page."""
        self._check_loop()
        try:
            client = await self._lambda()
            response = await client.get_durable_execution_state(**to_wire(params))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = _translate(exc, ExecutionStateError, (params.checkpoint_token,))
        else:
            return _read(response, ExecutionStatePage, ExecutionStateError)
        raise failure  # outside the handler: botocore's exception is not its context

    async def aclose(self) -> None:
        """Close the botocore client and its connection pool."""
        stack, self._stack, self._client = self._stack, None, None
        self._loop = None
        self._opening = None  # a lock belongs to its loop; the next loop makes its own
        if stack is not None:
            await stack.aclose()


#: What AWS's dex-local-runner says (as a 404) when a callback exists but is no longer open;
#: the service itself answers ``CallbackTimeoutException`` ("expired or already closed").
_CLOSED_MESSAGES = ("is not in STARTED state", "is not active")


def _callback_error(exc: Exception, api: str, callback_id: str = "") -> CallbackSendError:
    """The typed error for a failed ``SendDurableExecutionCallback*`` call.

    The callback ID is a bearer token for the callback, so it is cut out of the message
    (dex-local-runner quotes it), which may well end up in a log.
    """
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    code = error.get("Code")
    message = error.get("Message") or str(exc)
    if callback_id:
        # As given, and as botocore percent-encodes it into the request URL.
        for form in {callback_id, quote(callback_id, safe=""), quote_plus(callback_id)}:
            message = message.replace(form, "<callback id>")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    not_found = code == "ResourceNotFoundException" or (status == 404 and code in (None, "404"))
    cls: type[CallbackSendError] = CallbackSendError
    if code == "CallbackTimeoutException" or (
        not_found and any(text in message for text in _CLOSED_MESSAGES)
    ):
        cls = CallbackClosedError
    elif not_found:
        cls = CallbackNotFoundError
    translated = cls(
        f"{api} failed: {code + ': ' if code and code != str(status) else ''}{message}",
        retryable=cls is CallbackSendError and classify(code, message, status),
        code=code,
        status_code=status,
    )
    return translated


async def send_callback(
    client: AioBotocoreClient, api: str, callback_id: str, **params: Any
) -> None:
    """Call one of the callback APIs (``api`` in PascalCase) through ``client``'s session."""
    client._check_loop()
    method = "".join("_" + c.lower() if c.isupper() else c for c in api).lstrip("_")
    try:
        lambda_client = await client._lambda()
        await getattr(lambda_client, method)(CallbackId=callback_id, **params)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise _callback_error(exc, api, callback_id) from None


async def open_client(client: AioBotocoreClient) -> None:
    """Create ``client``'s botocore client now, so bad configuration fails at startup."""
    client._check_loop()
    try:
        await client._lambda()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise _callback_error(exc, "creating the Lambda client") from exc
