"""``durable-async ... --aws`` against AWS's dex-local-runner: answer, show, replay."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from dex_harness import (
    FAKE_AWS_ENV,
    REGION,
    DexRunner,
    InvokeEndpoint,
    history,
    running_runner,
    wait_terminal,
)

from durable_async import AioBotocoreClient
from durable_async.cli import main

pytestmark = [pytest.mark.runner, pytest.mark.anyio]

SHOP = Path(__file__).resolve().parent / "cli_workflows" / "shop.py"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def dex_runner() -> Iterator[DexRunner]:
    """A runner of this module's own: `list --aws` shows every execution it holds."""
    yield from running_runner()


async def callback_started(lam: Any, arn: str, within: float = 30) -> str:
    """The callback ID once the runner's history shows it (bounded poll of its API)."""
    deadline = time.monotonic() + within
    while True:
        for event in await history(lam, arn):
            if event["EventType"] == "CallbackStarted":
                return str(event["CallbackStartedDetails"]["CallbackId"])
        if time.monotonic() > deadline:
            raise TimeoutError("no CallbackStarted event")
        await asyncio.sleep(0.01)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


async def test_a_callback_answered_with_aws_finishes_the_execution_and_its_history_replays(
    dex_runner: DexRunner,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from durable_async.cli._target import load_target

    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", dex_runner.url)
    approval, _, _ = load_target(f"{SHOP}:approval")
    client = AioBotocoreClient(endpoint_url=dex_runner.url, region_name=REGION)

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return await approval.invoke_async(event, None, client=client)

    try:
        async with (
            InvokeEndpoint({"approval": invoke}) as endpoint,
            get_session().create_client(
                "lambda", endpoint_url=dex_runner.url, region_name=REGION
            ) as lam,
        ):
            arn = await asyncio.to_thread(
                dex_runner.start_execution, "approval", {}, lambda_endpoint=endpoint.url
            )
            callback_id = await callback_started(lam, arn)
            status, out, err = await cli(
                capsys, "callback", "succeed", callback_id, '{"approved": true}', "--aws"
            )
            assert (status, out) == (0, f"sent succeed to callback {callback_id}\n"), err
            described = await wait_terminal(lam, arn)
            status, out, err = await cli(capsys, "show", arn, "--aws")
            status_json, saved, _ = await cli(capsys, "show", arn, "--aws", "--json")
            late = await cli(capsys, "callback", "heartbeat", callback_id, "--aws")
            listed = await cli(capsys, "list", "--aws", "--function", "approval")
    finally:
        await client.aclose()

    assert endpoint.errors == []
    assert described["Status"] == "SUCCEEDED"
    assert json.loads(described["Result"]) == "approved"
    assert status == 0, err
    assert out.splitlines()[0] == arn
    assert out.splitlines()[1].startswith("EXECUTION approval-")
    assert "  SUCCEEDED  +0s  took " in out.splitlines()[1]
    assert "CONTEXT/WaitForCallback review  SUCCEEDED" in out
    assert "STEP review submitter  SUCCEEDED  attempts=1" in out
    assert listed[0] == 0
    assert listed[1].startswith("SUCCEEDED")
    assert listed[1].rstrip().endswith(arn)
    assert late[0] == 2  # the runner refuses a heartbeat for an ended callback
    file = tmp_path / "from-aws.json"
    file.write_text(saved)
    assert status_json == 0
    status, out, _ = await cli(capsys, "replay", f"{SHOP}:approval", str(file))
    assert (status, out) == (0, "OK: the code replays the history to the same outcome\n")
