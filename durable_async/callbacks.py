"""The external side of callbacks: what a service needs to answer a workflow's callback.

A workflow hands a callback ID to another system (``ctx.create_callback`` or
``ctx.wait_for_callback``'s submitter) and suspends. That system answers through Lambda's
``SendDurableExecutionCallbackSuccess``, ``...Failure`` and ``...Heartbeat`` APIs;
``CallbackClient`` calls them through aiobotocore, on the running loop::

    async with CallbackClient() as callbacks:
        await callbacks.succeed(callback_id, {"approved": True})

Endpoint, region and credentials come from the standard AWS configuration, so
``AWS_ENDPOINT_URL_LAMBDA`` points it at a local runner. For an aiohttp service,
``durable_async.aiohttp.callback_client_ctx`` opens one at startup and closes it at cleanup.
Importing this module imports neither aiobotocore nor aiohttp; the client does on entry.
"""

from __future__ import annotations

import asyncio
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from durable_async._client.aiobotocore import (
    AioBotocoreClient,
    _callback_error,
    open_client,
    sdk_session,
    send_callback,
)
from durable_async._error_wire import fit_error
from durable_async._errors import (
    CallbackClosedError,
    CallbackNotFoundError,
    CallbackSendError,
    PayloadTooLargeError,
    ValidationError,
)
from durable_async._serdes import (
    INVOKE_PAYLOAD_LIMIT_BYTES,
    JsonSerDes,
    SerDes,
    SerDesContext,
    serialize,
)
from durable_async._wire.models import ErrorObject

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

__all__ = [
    "CallbackClient",
    "CallbackClosedError",
    "CallbackNotFoundError",
    "CallbackSendError",
]

#: The service's pattern and length for a callback ID (botocore's Lambda model).
_CALLBACK_ID = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_CALLBACK_ID_MAX = 1024
#: A success result may be up to 1 MiB (the model's ``Result`` blob).
RESULT_LIMIT_BYTES = INVOKE_PAYLOAD_LIMIT_BYTES
_NO_CREDENTIALS = (
    "creating the Lambda client failed: no AWS credentials were found. botocore looks in "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), then the "
    "profile (AWS_PROFILE, default 'default') in the shared credentials and config files "
    "(AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE): keys, role_arn, sso_*, "
    "credential_process; then web identity (AWS_WEB_IDENTITY_TOKEN_FILE), the container "
    "endpoint (AWS_CONTAINER_CREDENTIALS_*) and EC2 instance metadata"
)


def _check_id(callback_id: object) -> str:
    """``callback_id`` if the service could accept it; ``ValidationError`` otherwise.

    The ID itself stays out of the message: it is a bearer token for the callback.
    """
    if not isinstance(callback_id, str):
        msg = f"a callback ID is a str, not {type(callback_id).__name__}"
        raise ValidationError(msg)
    if not 1 <= len(callback_id) <= _CALLBACK_ID_MAX or not _CALLBACK_ID.fullmatch(callback_id):
        msg = (
            f"not a callback ID ({len(callback_id)} characters; the service takes 1 to "
            f"{_CALLBACK_ID_MAX} of base64: letters, digits, '+', '/', then up to two '=')"
        )
        raise ValidationError(msg)
    return callback_id


class CallbackClient:
    """Completes, fails and heartbeats callbacks; an ``async with`` resource.

    Entering it creates the Lambda client and resolves its credentials, as the first call
    would (so a missing region or missing credentials fail at startup, with
    ``CallbackSendError``); leaving it closes the connection pool. One client serves many
    concurrent calls on the loop it was entered on.

    Args:
        serdes: encodes ``succeed`` results that are neither ``str`` nor ``bytes``
            (default: plain JSON, which ``JsonSerDes`` on the workflow side decodes).
        session, region_name, endpoint_url, connect_timeout, read_timeout, max_attempts:
            as for ``AioBotocoreClient``; botocore retries throttling and 5xx errors.
    """

    def __init__(
        self,
        *,
        serdes: SerDes[Any] | None = None,
        session: AioSession | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        max_attempts: int = 4,
    ) -> None:
        self._serdes = serdes
        self._transport = AioBotocoreClient(
            session=session,
            region_name=region_name,
            endpoint_url=endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
        )
        self._open = False

    async def __aenter__(self) -> Self:
        if self._open:
            msg = "this CallbackClient is already open"
            raise RuntimeError(msg)
        await open_client(self._transport)
        try:
            await self._resolve_credentials()
        except BaseException:
            await self._transport.aclose()
            raise
        self._open = True
        return self

    async def _resolve_credentials(self) -> None:
        """Resolve the credentials the client signs with, or raise ``CallbackSendError``.

        The client was created with the session's credentials (``get_credentials`` is
        cached on the session, so asking again costs nothing once they are found); deferred
        ones (an assumed role, SSO) are fetched now rather than on the first call. Nothing
        about the credentials themselves goes into a message.
        """
        session = self._transport._session or sdk_session()
        try:
            credentials = await session.get_credentials()
            if credentials is not None:
                await credentials.get_frozen_credentials()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _callback_error(exc, "resolving AWS credentials") from exc
        if credentials is None:
            raise CallbackSendError(_NO_CREDENTIALS, retryable=False)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        await self._transport.aclose()

    def _check_open(self) -> None:
        if not self._open:
            msg = "use the CallbackClient inside `async with CallbackClient() as client:`"
            raise RuntimeError(msg)

    async def succeed(self, callback_id: str, result: Any = None) -> None:
        """Complete the callback with ``result``; the workflow's ``result()`` returns it.

        ``bytes`` and ``str`` are sent as they are (UTF-8); ``None`` sends no result; any
        other value is encoded by the client's ``serdes`` (plain JSON by default).

        Raises:
            ValidationError: a malformed ID, or a result over 1 MiB (nothing is sent).
            CallbackNotFoundError: no such callback.
            CallbackClosedError: it already completed or timed out.
            CallbackSendError: any other failure (``retryable`` says if sending again helps).
        """
        self._check_open()
        _check_id(callback_id)
        payload = await self._encode(result)
        params: dict[str, Any] = {} if payload is None else {"Result": payload}
        await send_callback(
            self._transport, "SendDurableExecutionCallbackSuccess", callback_id, **params
        )

    async def fail(
        self,
        callback_id: str,
        *,
        error_type: str | None = None,
        message: str | None = None,
        data: str | None = None,
    ) -> None:
        """Fail the callback; the workflow's ``result()`` raises ``CallbackFailedError``.

        ``error_type``, ``message`` and ``data`` become that error's fields; they are cut
        to the service's 32 KiB error limit. Raises as ``succeed`` does.
        """
        self._check_open()
        _check_id(callback_id)
        for field, value in (("error_type", error_type), ("message", message), ("data", data)):
            if value is not None and not isinstance(value, str):
                msg = f"{field} must be a str or None, not {type(value).__name__}"
                raise ValidationError(msg)
        error = fit_error(ErrorObject(message=message, type=error_type, data=data))
        wire = {
            key: value
            for key, value in (
                ("ErrorType", error.type),
                ("ErrorMessage", error.message),
                ("ErrorData", error.data),
            )
            if value is not None
        }
        await send_callback(
            self._transport, "SendDurableExecutionCallbackFailure", callback_id, Error=wire
        )

    async def heartbeat(self, callback_id: str) -> None:
        """Tell the service the work behind the callback is still going.

        A callback created with a ``heartbeat_timeout`` times out unless a heartbeat (or
        its result) arrives within that time. Raises as ``succeed`` does.
        """
        self._check_open()
        _check_id(callback_id)
        await send_callback(self._transport, "SendDurableExecutionCallbackHeartbeat", callback_id)

    async def _encode(self, result: Any) -> bytes | None:
        if result is None:
            return None
        if isinstance(result, bytes | bytearray | memoryview):
            payload = bytes(result)
        elif isinstance(result, str):
            payload = result.encode("utf-8")
        else:
            text = await serialize(self._serdes or JsonSerDes(), result, SerDesContext())
            payload = b"" if text is None else text.encode("utf-8")
        if len(payload) > RESULT_LIMIT_BYTES:
            raise PayloadTooLargeError("the callback result", len(payload), RESULT_LIMIT_BYTES)
        return payload
