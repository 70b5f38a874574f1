"""The real backend: Lambda's durable-execution API through aiobotocore.

This is the only module that imports aiobotocore or botocore, and no botocore error
leaves it: every failure becomes ``CheckpointError`` or ``ExecutionStateError`` with
``retryable`` decided here, once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from durable_async._errors import BackendError, CheckpointError, ExecutionStateError
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


def _translate(exc: Exception, error_cls: type[BackendError]) -> BackendError:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    code = error.get("Code")
    message = error.get("Message") or str(exc)
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    translated = error_cls(
        f"{error_cls.operation} failed: {code + ': ' if code else ''}{message}",
        retryable=classify(code, message, status),
        code=code,
        status_code=status,
    )
    translated.__cause__ = exc
    return translated


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
        _sdk_session = session
    return _sdk_session


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
            raise _translate(exc, CheckpointError) from exc
        return from_wire(response, CheckpointResponse)

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
            raise _translate(exc, ExecutionStateError) from exc
        return from_wire(response, ExecutionStatePage)

    async def aclose(self) -> None:
        """Close the botocore client and its connection pool."""
        stack, self._stack, self._client = self._stack, None, None
        self._loop = None
        self._opening = None  # a lock belongs to its loop; the next loop makes its own
        if stack is not None:
            await stack.aclose()
