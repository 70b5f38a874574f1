"""A fault-injecting HTTP proxy between the SDK's aiobotocore client and dex-local-runner.

``FaultProxy`` is a small aiohttp server on loopback that forwards every request to the
runner. Calls of the two durable-execution APIs (``CheckpointDurableExecution``: ``POST
.../checkpoint``; ``GetDurableExecutionState``: ``GET .../state``) first ask a
``FaultSchedule`` what to do to them: nothing, or one ``Fault``. Point the SDK at it with
``AioBotocoreClient(endpoint_url=proxy.url)``.

A schedule is a script (the Nth call of an API meets this fault) followed, once the script
is used up, by seeded random faults at a given rate, so a run is reproducible from its seed.
Every call is recorded in ``proxy.calls`` and every injected fault counted by kind in
``schedule.injected`` (the soak runner's figures).

What each fault does on the wire:

* ``STATUS`` (5xx) and ``THROTTLE`` (429): answered by the proxy with that status and the
  service's ``x-amzn-ErrorType`` (``ServiceException``, ``TooManyRequestsException``);
  the runner never sees the call.
* ``RESET``: the connection is reset (RST) before anything is forwarded.
* ``TIMEOUT``: nothing is forwarded and no answer comes until the client gives up (its
  read timeout) or the proxy closes.
* ``SLOW``: forwarded; the answer is held for ``delay`` seconds.
* ``LOST_AFTER_COMMIT``: forwarded, so the runner records the checkpoint, then the
  connection is reset: the client never sees the answer.
* ``DUPLICATE``: forwarded twice (the network delivered it twice); the first answer goes
  back. ``calls`` records whether the second answer matched.
* ``STALE_TOKEN``: answered 400 ``InvalidParameterValueException`` "Invalid checkpoint
  token", as the service (and the runner) answer a spent or unknown token.
* ``REVOKED``: forwarded, then the answer's ``CheckpointToken`` is removed: the service
  withdrew the token after recording the call.
* ``TRUNCATED``: forwarded, then only the first half of the answer's body is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import random
import socket
import struct
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import aiohttp
import attrs
from aiohttp import web

CHECKPOINT = "checkpoint"
STATE = "state"
APIS = (CHECKPOINT, STATE)

#: Headers that describe one hop, or that aiohttp recomputes for the body it sends.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "keep-alive",
        "host",
        "date",
        "server",
    }
)


class FaultKind(enum.StrEnum):
    STATUS = "5xx"
    THROTTLE = "429"
    RESET = "reset"
    TIMEOUT = "timeout"
    SLOW = "slow"
    LOST_AFTER_COMMIT = "lost-after-commit"
    DUPLICATE = "duplicate"
    STALE_TOKEN = "stale-token"
    REVOKED = "revoked-token"
    TRUNCATED = "truncated"


@attrs.frozen
class Fault:
    """One fault to inject into one call."""

    kind: FaultKind
    #: HTTP status for ``STATUS``.
    status: int = 503
    #: Seconds an answer is held for ``SLOW``.
    delay: float = 0.2

    @classmethod
    def of(cls, kind: FaultKind | str, **fields: object) -> Fault:
        return cls(FaultKind(kind), **fields)  # type: ignore[arg-type]


@attrs.define
class Call:
    """One API call that reached the proxy, and what was done to it."""

    api: str
    fault: Fault | None
    client_token: str | None
    #: The checkpoint token the call carried.
    request_token: str | None = None
    #: HTTP status the client got (``None``: the connection was reset or timed out).
    status: int | None = None
    #: For ``DUPLICATE``: whether the runner answered the duplicate identically.
    duplicate_matched: bool | None = None


class FaultSchedule:
    """Which fault, if any, the next call of an API meets.

    ``script`` maps an API (``"checkpoint"``, ``"state"``) to the faults its calls meet in
    order (``None``: no fault); after the script, each call meets a fault with probability
    ``rate``, of a kind drawn from ``kinds`` by a ``random.Random(seed)``.
    """

    def __init__(
        self,
        script: Mapping[str, Sequence[Fault | None]] | None = None,
        *,
        seed: int = 0,
        rate: float = 0.0,
        kinds: Iterable[Fault] = (),
    ) -> None:
        self._script = {api: list(faults) for api, faults in (script or {}).items()}
        self._random = random.Random(seed)
        self._rate = rate
        self._kinds = tuple(kinds)
        if rate and not self._kinds:
            raise ValueError("a random fault rate needs kinds to draw from")
        #: Faults injected so far, by kind.
        self.injected: Counter[FaultKind] = Counter()

    def next(self, api: str) -> Fault | None:
        scripted = self._script.get(api)
        if scripted:
            fault = scripted.pop(0)
        elif self._rate and self._random.random() < self._rate:
            fault = self._random.choice(self._kinds)
        else:
            fault = None
        if fault is not None:
            self.injected[fault.kind] += 1
        return fault

    @property
    def script_done(self) -> bool:
        """Whether every scripted fault has been handed out."""
        return not any(self._script.values())


def api_of(request: web.Request) -> str | None:
    """Which durable-execution API a request calls, if either."""
    path = request.path
    if "/durable-executions/" not in path:
        return None
    if request.method == "POST" and path.endswith("/checkpoint"):
        return CHECKPOINT
    if request.method == "GET" and path.endswith("/state"):
        return STATE
    return None


class _Reset(Exception):
    """The connection was reset on purpose: nothing is to be written back."""


class FaultProxy:
    """The proxy; ``async with FaultProxy(upstream, schedule) as proxy: proxy.url``."""

    def __init__(self, upstream: str, schedule: FaultSchedule | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.schedule = schedule or FaultSchedule()
        self.calls: list[Call] = []
        #: Checkpoint tokens and callback IDs the proxy carried: what must never be logged.
        self.secrets: set[str] = set()
        #: The checkpoint token of each invocation event passed to ``note_event``.
        self.event_tokens: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()

    def note_event(self, event: Mapping[str, object]) -> None:
        """Record an invocation event's checkpoint token (it never crosses the proxy)."""
        token = event.get("CheckpointToken")
        if isinstance(token, str):
            self.event_tokens.append(token)
            self.secrets.add(token)

    def calls_of(self, api: str) -> list[Call]:
        return [call for call in self.calls if call.api == api]

    async def __aenter__(self) -> FaultProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()  # held requests (TIMEOUT) are answered now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _forward(
        self, request: web.Request, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as response:
            payload = await response.read()
            out = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
            return response.status, out, payload

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        api = api_of(request)
        if api is None:
            status, headers, payload = await self._forward(request, body)
            return web.Response(status=status, headers=headers, body=payload)
        fault = self.schedule.next(api)
        request_token = request.query.get("CheckpointToken") or _field(body, "CheckpointToken")
        call = Call(api, fault, _field(body, "ClientToken"), request_token)
        self.calls.append(call)
        if request_token:
            self.secrets.add(request_token)
        try:
            status, headers, payload = await self._inject(request, body, fault, call)
        except _Reset:
            _reset(request)
            raise asyncio.CancelledError from None  # aiohttp drops the request quietly
        self.secrets.update(_secrets_in(payload))
        call.status = status
        return web.Response(status=status, headers=headers, body=payload)

    async def _inject(
        self, request: web.Request, body: bytes, fault: Fault | None, call: Call
    ) -> tuple[int, dict[str, str], bytes]:
        kind = None if fault is None else fault.kind
        if kind is FaultKind.STATUS:
            assert fault is not None
            return _error(fault.status, "ServiceException", "injected service error")
        if kind is FaultKind.THROTTLE:
            return _error(429, "TooManyRequestsException", "Rate exceeded")
        if kind is FaultKind.STALE_TOKEN:
            return _error(400, "InvalidParameterValueException", "Invalid checkpoint token")
        if kind is FaultKind.RESET:
            raise _Reset
        if kind is FaultKind.TIMEOUT:
            await self._closing.wait()  # the client's read timeout ends the call first
            raise _Reset
        status, headers, payload = await self._forward(request, body)
        if kind is FaultKind.SLOW:
            assert fault is not None
            await asyncio.sleep(fault.delay)  # the injected latency itself
        elif kind is FaultKind.LOST_AFTER_COMMIT:
            raise _Reset
        elif kind is FaultKind.DUPLICATE:
            again = await self._forward(request, body)
            call.duplicate_matched = again[0] == status and again[2] == payload
        elif kind is FaultKind.REVOKED and status == 200:
            document = json.loads(payload)
            document.pop("CheckpointToken", None)
            payload = json.dumps(document).encode()
        elif kind is FaultKind.TRUNCATED:
            payload = payload[: len(payload) // 2]
        return status, headers, payload


def _error(status: int, error_type: str, message: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"x-amzn-ErrorType": error_type, "Content-Type": "application/json"}
    return status, headers, json.dumps({"Type": "User", "message": message}).encode()


def _field(body: bytes, key: str) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        value = json.loads(body).get(key)
        return value if isinstance(value, str) else None
    return None


def _secrets_in(payload: bytes) -> set[str]:
    """Checkpoint tokens and callback IDs anywhere in a JSON answer."""
    found: set[str] = set()
    try:
        document = json.loads(payload)
    except ValueError:
        return found
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("CheckpointToken", "CallbackId") and isinstance(value, str):
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _reset(request: web.Request) -> None:
    """Close the request's connection with a TCP RST, not an orderly FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
