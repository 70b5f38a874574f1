"""AWS's dex-local-runner on loopback, plus an in-process Lambda-Invoke endpoint.

Shared by ``tests/test_aiobotocore_runner.py`` and ``benchmarks/bench_loopback.py``.

* ``checker_python()`` finds (or builds, via ``../shared/conformance/setup.sh``) the
  conformance checker's venv, which holds the runner; durable_async never runs there.
* ``DexRunner`` starts ``dex_runner.py`` on a free 127.0.0.1 port (``--port 0``, read
  back from ``--port-file``) and stops it with SIGTERM.
* ``InvokeEndpoint`` is a tiny aiohttp server that answers the runner's Lambda Invoke
  (``POST /2015-03-31/functions/{name}/invocations``) by awaiting a Python coroutine on
  the caller's event loop, typically ``handler.invoke_async(event, ...)`` with an
  ``AioBotocoreClient`` pointed at the runner. Executions are started with their own
  ``LambdaEndpoint``, so every test can run its own endpoint against one runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

REGION = "us-west-2"
ACCOUNT_ID = "123456789012"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_DIR = Path(
    os.environ.get("DURABLE_CONFORMANCE_DIR", PROJECT_ROOT.parent / "shared" / "conformance")
)

#: Credentials and region for every party; nothing reaches AWS.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class RunnerUnavailable(RuntimeError):
    """The checker's venv (and so the runner) cannot be had on this machine."""


def checker_python(timeout: float = 600) -> str:
    """Path of the checker venv's python; builds the venv on first use (``setup.sh``)."""
    setup = CONFORMANCE_DIR / "setup.sh"
    dex = CONFORMANCE_DIR / "dex_runner.py"
    if not setup.is_file() or not dex.is_file():
        raise RunnerUnavailable(f"no conformance checker at {CONFORMANCE_DIR}")
    try:
        done = subprocess.run(
            ["bash", str(setup)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunnerUnavailable(f"setup.sh did not finish: {exc}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        tail = done.stderr.strip()[-400:]
        raise RunnerUnavailable(f"setup.sh failed (exit {done.returncode}): {tail}")
    return lines[-1]


def running_runner() -> Iterator[DexRunner]:
    """A started runner for a pytest fixture; skips without one.

    With ``DURABLE_REQUIRE_RUNNER`` set (as CI should), a missing runner fails instead.
    """
    import pytest

    try:
        python = checker_python()
    except RunnerUnavailable as exc:
        if os.environ.get("DURABLE_REQUIRE_RUNNER"):
            pytest.fail(f"dex-local-runner unavailable: {exc}")
        pytest.skip(f"dex-local-runner unavailable: {exc}")
    runner = DexRunner(python).start()
    try:
        yield runner
    finally:
        status = runner.stop()
        assert status == 0, f"dex_runner exited with {status}: {runner.log_tail()}"


class DexRunner:
    """``dex_runner.py`` in a child process, on a free loopback port."""

    def __init__(
        self,
        python: str,
        *,
        skip_time: bool = False,
        start_timeout: float = 60,
        invocation_timeout: int = 60,
    ) -> None:
        self.python = python
        self.skip_time = skip_time
        #: Seconds the runner lets one invocation run (Lambda's function timeout).
        self.invocation_timeout = invocation_timeout
        self.start_timeout = start_timeout
        self.url = ""
        self._work = Path(tempfile.mkdtemp(prefix="dex-runner-"))
        self.log_path = self._work / "runner.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DexRunner:
        port_file = self._work / "runner.port"
        cmd = [
            self.python,
            str(CONFORMANCE_DIR / "dex_runner.py"),
            "--host", "127.0.0.1",
            "--port", "0",
            "--port-file", str(port_file),
            # Placeholder; every execution names its own endpoint (LambdaEndpoint).
            "--lambda-endpoint", "http://127.0.0.1:9",
            "--region", REGION,
            "--invocation-timeout", str(self.invocation_timeout),
            "--skip-time" if self.skip_time else "--no-skip-time",
            "--log-level", "WARNING",
        ]  # fmt: skip
        env = {**os.environ, **FAKE_AWS_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            port = self._wait_port(port_file)
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"
        return self

    def _wait_port(self, port_file: Path) -> int:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"dex_runner exited ({self._proc.returncode}): {self.log_tail()}"
                )
            if port_file.is_file():
                port = int(port_file.read_text())
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    return port
            time.sleep(0.02)  # bounded poll for the port file, nothing else
        raise RuntimeError(
            f"dex_runner wrote no port file in {self.start_timeout}s: {self.log_tail()}"
        )

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; returns the exit status."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(OSError):
            self.log_path.unlink()
            (self._work / "runner.port").unlink(missing_ok=True)
            self._work.rmdir()
        return proc.returncode

    # -- the runner's own HTTP API (blocking; call through asyncio.to_thread) ----------

    def http_json(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def start_execution(
        self,
        function_name: str,
        input_value: Any,
        *,
        lambda_endpoint: str,
        timeout_seconds: int = 120,
    ) -> str:
        """``POST /start-durable-execution``; returns the DurableExecutionArn."""
        body = {
            "AccountId": ACCOUNT_ID,
            "FunctionName": function_name,
            "FunctionQualifier": "$LATEST",
            "ExecutionName": f"{function_name}-{uuid.uuid4().hex[:12]}",
            "ExecutionTimeoutSeconds": timeout_seconds,
            "ExecutionRetentionPeriodDays": 1,
            "InvocationId": str(uuid.uuid4()),
            "Input": json.dumps(input_value),
            "LambdaEndpoint": lambda_endpoint,
        }
        out = self.http_json("POST", "/start-durable-execution", body) or {}
        arn = out.get("ExecutionArn")
        if not arn:
            raise RuntimeError(f"start-durable-execution returned no ExecutionArn: {out}")
        return str(arn)

    def describe_execution(self, arn: str) -> dict[str, Any]:
        """``GetDurableExecution``, without a Lambda client (and its whole service model)."""
        path = f"/2025-12-01/durable-executions/{urllib.parse.quote(arn, safe='')}"
        described: dict[str, Any] = self.http_json("GET", path)
        return described


class InvokeEndpoint:
    """A Lambda-Invoke-compatible endpoint serving coroutines on the running loop.

    ``handlers`` maps a function name to ``async (event) -> invocation output``. Every
    answered invocation is appended to ``invocations`` as ``(name, event, output)``; a
    handler that raises is answered as a function error (``X-Amz-Function-Error``),
    which the runner treats as a failed invocation, and recorded in ``errors``.
    """

    def __init__(self, handlers: Mapping[str, Handler] | None = None) -> None:
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.invocations: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.errors: list[tuple[str, BaseException]] = []
        #: Set whenever an invocation has been answered (clear it before starting one).
        self.answered = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> InvokeEndpoint:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/2015-03-31/functions/{name}/invocations", self._invoke)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]  # port 0: the bound port is only known now
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _invoke(self, request: web.Request) -> web.Response:
        name = request.match_info["name"].split(":")[0]
        event = await request.json()
        handler = self.handlers.get(name)
        try:
            if handler is None:
                raise LookupError(f"no handler for function {name!r}")
            output = await handler(event)
        except Exception as exc:  # the runner records a failed invocation
            self.errors.append((name, exc))
            self.answered.set()
            body = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }
            return web.json_response(body, headers={"X-Amz-Function-Error": "Unhandled"})
        self.invocations.append((name, event, output))
        self.answered.set()
        return web.json_response(output, headers={"X-Amz-Executed-Version": "$LATEST"})


async def described_when_terminal(
    runner: DexRunner, arn: str, within: float = 30
) -> dict[str, Any]:
    """``GetDurableExecution`` once ``arn`` is terminal, through the runner's API (bounded poll).

    The runner records the outcome right after the last invocation answers, in its own
    thread, so there is nothing to await on this side but its API.
    """
    deadline = time.monotonic() + within
    while True:
        described = await asyncio.to_thread(runner.describe_execution, arn)
        if described.get("Status") in TERMINAL:
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution still {described.get('Status')} after {within}s")
        await asyncio.sleep(0.01)


async def run_to_end(
    runner: DexRunner, name: str, invoke: Handler, input_value: Any = None
) -> tuple[dict[str, Any], InvokeEndpoint]:
    """Start an execution of ``name`` served by ``invoke`` and wait until it is terminal.

    Returns the runner's description of the execution and the endpoint, whose
    ``invocations`` and ``errors`` record every invocation it answered.
    """
    async with InvokeEndpoint({name: invoke}) as endpoint:
        arn = await asyncio.to_thread(
            runner.start_execution, name, input_value, lambda_endpoint=endpoint.url
        )
        described = await described_when_terminal(runner, arn)
    return described, endpoint


async def wait_terminal(lambda_client: Any, arn: str, within: float = 30) -> dict[str, Any]:
    """Poll ``GetDurableExecution`` (bounded) until the execution is terminal.

    The runner records the outcome right after the final Invoke returns, in its own
    thread, so there is nothing to await on this side but its API.
    """
    deadline = time.monotonic() + within
    while True:
        described: dict[str, Any] = await lambda_client.get_durable_execution(
            DurableExecutionArn=arn
        )
        if described.get("Status") in TERMINAL:
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution still {described.get('Status')} after {within}s")
        await asyncio.sleep(0.01)


async def history(lambda_client: Any, arn: str) -> list[dict[str, Any]]:
    """Every event of ``arn``'s history (all pages), with execution data."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": True}
    while True:
        page = await lambda_client.get_durable_execution_history(**kwargs)
        events.extend(page.get("Events", []))
        marker = page.get("NextMarker")
        if not marker:
            return events
        kwargs["Marker"] = marker
