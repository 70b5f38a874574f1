"""The ``durable-async`` command: run, history, callback, list, show, replay, --aws."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from dex_harness import FAKE_AWS_ENV

from durable_async.cli import main

WORKFLOWS = Path(__file__).resolve().parent / "cli_workflows"
SHOP = WORKFLOWS / "shop.py"


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite3")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def only_callback(store: str) -> str:
    with closing(sqlite3.connect(store)) as db:
        (callback_id,) = db.execute("SELECT callback_id FROM callbacks").fetchone()
    return str(callback_id)


def test_run_prints_the_result_and_the_tree(capsys: pytest.CaptureFixture[str], store: str) -> None:
    status, out, _ = cli(
        capsys, "run", f"{SHOP}:order", "--input", '{"item": "lamp"}', "--store", store
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == 'SUCCEEDED: {"item": "lamp", "price": 42, "receipt": "receipt for 42"}'
    assert lines[1:5] == [
        "EXECUTION  SUCCEEDED  +0s  took 5m00s",
        "├─ STEP price  SUCCEEDED  attempts=1  +0s  took 0s",
        "├─ WAIT cool-off  SUCCEEDED  +0s  took 5m00s",
        "└─ CHAINED_INVOKE receipt  SUCCEEDED  +5m00s  took 0s",
    ]
    assert "  #2 at +5m00s resumed by WAIT cool-off; ended PENDING" in out


def test_run_json_is_a_history_that_the_history_command_renders(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path
) -> None:
    _, tree, _ = cli(capsys, "run", f"{SHOP}:order", "--input", '{"item": "a"}', "--store", store)
    status, out, _ = cli(
        capsys, "run", f"{SHOP}:order", "--input", '{"item": "a"}', "--store", store, "--json"
    )
    assert status == 0
    saved = json.loads(out)
    assert saved["Status"] == "SUCCEEDED"
    assert saved["Result"]["receipt"] == "receipt for 42"
    file = tmp_path / "history.json"
    file.write_text(out)
    status, rendered, _ = cli(capsys, "history", str(file))
    assert status == 0
    assert rendered == tree.split("\n", 1)[1]  # the same tree, without the result line


def test_a_failed_run_exits_1_naming_the_failed_operation(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    status, out, err = cli(capsys, "run", f"{SHOP}:broken", "--store", store)
    assert status == 1
    assert out.startswith("FAILED")
    assert "failed at STEP charge after 1 attempt(s)" in err
    assert "ValueError: card declined" in err
    assert "durable_async/_" not in err  # no SDK internals


def test_a_callback_answered_from_another_process_finishes_the_workflow(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    status, out, _ = cli(capsys, "run", f"{SHOP}:approval", "--input", "{}", "--store", store)
    assert status == 0
    assert out.startswith("PENDING")
    callback_id = only_callback(store)
    assert f"durable-async callback succeed {callback_id} '<JSON result>' --store {store}" in out
    done = subprocess.run(
        [sys.executable, "-m", "durable_async", "callback", "succeed", callback_id,
         '{"approved": true}', "--store", store],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('SUCCEEDED: "approved"')
    assert "#2 at +0s resumed by CALLBACK" in done.stdout  # numbering survived the restart
    status, listed, _ = cli(capsys, "list", "--store", store)
    assert listed.startswith("SUCCEEDED")
    assert f"{SHOP}:approval" in listed


def test_callback_fail_and_heartbeat_reach_the_stored_callback(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    cli(capsys, "run", f"{SHOP}:approval", "--input", "{}", "--store", store)
    callback_id = only_callback(store)
    status, out, _ = cli(capsys, "callback", "heartbeat", callback_id, "--store", store)
    assert (status, out) == (0, f"heartbeat recorded for callback {callback_id}\n")
    status, out, err = cli(
        capsys, "callback", "fail", callback_id, "nobody home", "--type", "Rejected",
        "--store", store,
    )  # fmt: skip
    assert status == 1
    assert "nobody home" in out + err
    status, _, err = cli(capsys, "callback", "succeed", callback_id, "{}", "--store", store)
    assert status == 2
    assert "already ended" in err


def test_show_renders_a_stored_execution_by_the_end_of_its_arn(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    cli(capsys, "run", f"{SHOP}:order", "--input", '{"item": "x"}', "--store", store)
    with closing(sqlite3.connect(store)) as db:
        (arn,) = db.execute("SELECT arn FROM executions ORDER BY rowid LIMIT 1").fetchone()
    status, out, _ = cli(capsys, "show", arn[-8:], "--store", store)
    assert status == 0
    assert out.splitlines()[:2] == [arn, "EXECUTION  SUCCEEDED  +0s  took 5m00s"]
    status, _, err = cli(capsys, "show", "nothing-like-it", "--store", store)
    assert status == 2
    assert "no execution" in err


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (f"{SHOP}:not_a_handler", "is a int, not a @durable_execution handler"),
        (f"{SHOP}:missing", "handlers in shop.py: approval, broken, order, receipt"),
        (f"{SHOP}", "expected FILE.py:handler"),
        ("nowhere.py:handler", "no such file"),
    ],
)
def test_a_bad_target_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], store: str, target: str, problem: str
) -> None:
    status, _, err = cli(capsys, "run", target, "--store", store)
    assert status == 2
    assert problem in err


def test_bad_input_json_is_a_usage_error(capsys: pytest.CaptureFixture[str], store: str) -> None:
    status, _, err = cli(capsys, "run", f"{SHOP}:order", "--input", "{item", "--store", store)
    assert status == 2
    assert "--input is not JSON" in err


def test_ctx_logger_output_shows_without_logging_setup(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "durable_async", "run", f"{SHOP}:order", "--input",
         '{"item": "lamp"}', "--store", str(tmp_path / "s.sqlite3")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ordering lamp" in done.stderr


# -- saved histories from the Lambda API ----------------------------------------------------


STATE_RESPONSE = {
    "Operations": [
        {"Id": "e", "Type": "EXECUTION", "Status": "SUCCEEDED",
         "StartTimestamp": 1767225600.0, "EndTimestamp": 1767225660.5,
         "ExecutionDetails": {"InputPayload": "{}"}},
        {"Id": "s1", "Type": "STEP", "SubType": "Step", "Name": "charge", "Status": "SUCCEEDED",
         "StartTimestamp": 1767225600.0, "EndTimestamp": 1767225601.0,
         "StepDetails": {"Attempt": 2, "Result": "\"ok\""}},
        {"Id": "w1", "Type": "WAIT", "SubType": "Wait", "Name": "pause", "Status": "SUCCEEDED",
         "StartTimestamp": 1767225601.0, "EndTimestamp": 1767225660.0},
    ]
}  # fmt: skip

HISTORY_RESPONSE = {
    "Events": [
        {"EventType": "ExecutionStarted", "EventId": 1, "Id": "e",
         "EventTimestamp": "2026-01-01T00:00:00Z",
         "ExecutionStartedDetails": {"Input": {"Payload": "{}"}, "ExecutionTimeout": 900}},
        {"EventType": "StepStarted", "EventId": 2, "Id": "s1", "Name": "charge",
         "SubType": "Step", "EventTimestamp": "2026-01-01T00:00:00Z"},
        {"EventType": "StepFailed", "EventId": 3, "Id": "s1", "Name": "charge",
         "SubType": "Step", "EventTimestamp": "2026-01-01T00:00:00.500Z",
         "StepFailedDetails": {"Error": {"Payload": {"ErrorType": "Timeout",
                                                      "ErrorMessage": "slow"}},
                               "RetryDetails": {"CurrentAttempt": 1,
                                                "NextAttemptDelaySeconds": 1}}},
        {"EventType": "StepStarted", "EventId": 4, "Id": "s1", "Name": "charge",
         "SubType": "Step", "EventTimestamp": "2026-01-01T00:00:00.500Z"},
        {"EventType": "StepSucceeded", "EventId": 5, "Id": "s1", "Name": "charge",
         "SubType": "Step", "EventTimestamp": "2026-01-01T00:00:01Z",
         "StepSucceededDetails": {"Result": {"Payload": "\"ok\""},
                                  "RetryDetails": {"CurrentAttempt": 2}}},
        {"EventType": "WaitStarted", "EventId": 6, "Id": "w1", "Name": "pause",
         "SubType": "Wait", "EventTimestamp": "2026-01-01T00:00:01Z",
         "WaitStartedDetails": {"Duration": 59,
                                "ScheduledEndTimestamp": "2026-01-01T00:01:00Z"}},
        {"EventType": "WaitSucceeded", "EventId": 7, "Id": "w1", "Name": "pause",
         "SubType": "Wait", "EventTimestamp": "2026-01-01T00:01:00Z"},
        {"EventType": "InvocationCompleted", "EventId": 8,
         "EventTimestamp": "2026-01-01T00:01:00Z",
         "InvocationCompletedDetails": {"StartTimestamp": "2026-01-01T00:01:00Z",
                                        "EndTimestamp": "2026-01-01T00:01:00Z",
                                        "RequestId": "r"}},
        {"EventType": "ExecutionSucceeded", "EventId": 9, "Id": "e",
         "EventTimestamp": "2026-01-01T00:01:00.500Z",
         "ExecutionSucceededDetails": {"Result": {"Payload": "\"ok\""}}},
    ]
}  # fmt: skip


@pytest.mark.parametrize(
    "response", [STATE_RESPONSE, HISTORY_RESPONSE], ids=["state", "history-events"]
)
def test_history_renders_lambda_api_responses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, response: dict[str, Any]
) -> None:
    file = tmp_path / "saved.json"
    file.write_text(json.dumps(response))
    status, out, _ = cli(capsys, "history", str(file))
    assert status == 0
    assert out.splitlines() == [
        "EXECUTION  SUCCEEDED  +0s  took 1m00s",
        "├─ STEP charge  SUCCEEDED  attempts=2  +0s  took 1s",
        "└─ WAIT pause  SUCCEEDED  +1s  took 59s",
    ]


def test_history_of_a_file_that_is_not_a_history_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "other.json"
    file.write_text('{"Items": []}')
    status, _, err = cli(capsys, "history", str(file))
    assert status == 2
    assert "'Operations' list (GetDurableExecutionState)" in err


# -- replay -------------------------------------------------------------------------------


@pytest.fixture
def recorded(capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path) -> str:
    _, out, _ = cli(
        capsys, "run", f"{SHOP}:order", "--input", '{"item": "lamp"}', "--store", store, "--json"
    )
    file = tmp_path / "recorded.json"
    file.write_text(out)
    return str(file)


def test_replay_of_unchanged_code_passes(capsys: pytest.CaptureFixture[str], recorded: str) -> None:
    status, out, _ = cli(capsys, "replay", f"{SHOP}:order", recorded)
    assert (status, out) == (0, "OK: the code replays the history to the same outcome\n")


def test_replay_reports_a_renamed_step(capsys: pytest.CaptureFixture[str], recorded: str) -> None:
    status, out, _ = cli(capsys, "replay", f"{WORKFLOWS / 'shop_renamed.py'}:order", recorded)
    assert status == 1
    assert out.startswith("NON-DETERMINISTIC")
    assert "name='price'" in out
    assert "name='quote'" in out


def test_replay_reports_reordered_operations(
    capsys: pytest.CaptureFixture[str], recorded: str
) -> None:
    status, out, _ = cli(capsys, "replay", f"{WORKFLOWS / 'shop_reordered.py'}:order", recorded)
    assert status == 1
    assert out.startswith("NON-DETERMINISTIC")
    assert "STEP" in out
    assert "WAIT" in out


def test_replay_of_a_running_execution_stops_at_the_end_of_the_recording(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path
) -> None:
    _, out, _ = cli(capsys, "run", f"{SHOP}:approval", "--input", "{}", "--store", store, "--json")
    file = tmp_path / "running.json"
    file.write_text(out)
    status, out, _ = cli(capsys, "replay", f"{SHOP}:approval", str(file))
    assert (status, out) == (0, "OK: the code replays the history up to the end of the recording\n")


# -- --aws, against a loopback stub of the Lambda API ----------------------------------------


@pytest.mark.anyio
async def test_aws_commands_call_the_lambda_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiohttp import web

    received: list[tuple[str, str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        received.append((request.method, request.path, body.decode() or None))
        if request.path.endswith("/history"):
            return web.json_response({"Events": HISTORY_RESPONSE["Events"]})
        if request.path.endswith("/durable-executions"):
            return web.json_response(
                {"DurableExecutions": [{
                    "DurableExecutionArn": "arn:x", "DurableExecutionName": "n",
                    "FunctionArn": "arn:f", "Status": "RUNNING",
                    "StartTimestamp": 1767225600.0}]}
            )  # fmt: skip
        if request.path.endswith("/heartbeat") and "gone" in request.path:
            return web.json_response(
                {"Type": "ResourceNotFoundException", "message": "no such callback"},
                status=404,
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{port}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:

        def run(*argv: str) -> tuple[int, str, str]:
            return cli(capsys, *argv)

        status, out, _ = await asyncio.to_thread(
            run, "callback", "succeed", "cb1", '{"approved": true}', "--aws"
        )
        assert (status, out) == (0, "sent succeed to callback cb1\n")
        await asyncio.to_thread(run, "callback", "fail", "cb1", "late", "--type", "T", "--aws")
        status, _, err = await asyncio.to_thread(run, "callback", "heartbeat", "gone", "--aws")
        assert status == 2
        assert "ResourceNotFoundException" in err
        status, out, _ = await asyncio.to_thread(run, "list", "--aws", "--function", "shop")
        assert out.startswith("RUNNING    2026-01-01T00:00:00+00:00  n  arn:x")
        status, out, _ = await asyncio.to_thread(run, "show", "arn:x", "--aws")
        assert "├─ STEP charge  SUCCEEDED  attempts=2  +0s  took 1s" in out
    finally:
        await runner.cleanup()
    paths = [(method, path) for method, path, _ in received]
    assert paths[:3] == [
        ("POST", "/2025-12-01/durable-execution-callbacks/cb1/succeed"),
        ("POST", "/2025-12-01/durable-execution-callbacks/cb1/fail"),
        ("POST", "/2025-12-01/durable-execution-callbacks/gone/heartbeat"),
    ]
    assert received[0][2] == '{"approved": true}'
    assert json.loads(received[1][2] or "") == {"ErrorMessage": "late", "ErrorType": "T"}
    assert paths[3] == ("GET", "/2025-12-01/functions/shop/durable-executions")
    assert paths[4][1].endswith("/history")
    assert os.environ["AWS_ENDPOINT_URL_LAMBDA"].startswith("http://127.0.0.1")


def test_a_failure_shows_the_users_frames_of_the_recorded_stack_trace() -> None:
    import io

    from durable_async._wire.enums import OperationStatus, OperationType
    from durable_async._wire.models import ErrorObject, Operation, StepDetails
    from durable_async.cli._commands import _explain_failure
    from durable_async.testing import History

    sdk = Path(__file__).resolve().parent.parent / "durable_async" / "_operations" / "step.py"
    error = ErrorObject(
        message="card declined",
        type="ValueError",
        stack_trace=(
            f'  File "{sdk}", line 10, in run\n    return await body()\n',
            '  File "/home/me/shop.py", line 7, in charge\n    raise ValueError("card declined")\n',
        ),
    )
    step = Operation(
        id="s",
        type=OperationType.STEP,
        status=OperationStatus.FAILED,
        name="charge",
        step_details=StepDetails(attempt=3, error=error),
    )
    out = io.StringIO()
    _explain_failure(History([step]), None, out)
    assert out.getvalue() == (
        "failed at STEP charge after 3 attempt(s)\n"
        "Traceback (most recent call last):\n"
        '  File "/home/me/shop.py", line 7, in charge\n'
        '    raise ValueError("card declined")\n'
        "ValueError: card declined\n"
    )


def test_a_real_time_run_is_resumed_on_real_time(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    status, out, _ = cli(
        capsys, "run", f"{SHOP}:approval", "--input", "{}", "--store", store, "--real-time"
    )
    assert (status, out.split("\n", 1)[0]) == (0, "PENDING")
    status, out, _ = cli(
        capsys, "callback", "succeed", only_callback(store), '{"approved": false}', "--store", store
    )
    assert (status, out.split("\n", 1)[0]) == (0, 'SUCCEEDED: "rejected"')
    with closing(sqlite3.connect(store)) as db:
        (real_time, clock) = db.execute("SELECT real_time, clock FROM executions").fetchone()
    assert real_time == 1
    assert not clock.startswith("2026-01-01T00:00")  # the wall clock, not the virtual epoch


@pytest.mark.anyio
async def test_a_real_clock_cannot_be_moved_and_waits_for_nothing_past() -> None:
    from durable_async.testing import RealClock

    clock = RealClock()
    with pytest.raises(TypeError, match="cannot be moved"):
        clock.advance(5)
    await clock.wait_until(clock.now())  # already due: returns at once


def test_the_human_approval_example_waits_for_its_callback_then_publishes(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "human_approval.py"
    status, out, _ = cli(
        capsys, "run", f"{example}:handler", "--input", '{"document": "q3.pdf"}',
        "--store", store,
    )  # fmt: skip
    assert (status, out.split("\n", 1)[0]) == (0, "PENDING")
    callback_id = only_callback(store)
    assert f"waiting on callback {callback_id}" in out
    status, out, _ = cli(
        capsys, "callback", "succeed", callback_id, '{"approved": true}', "--store", store
    )
    assert status == 0
    assert out.startswith('SUCCEEDED: "published q3.pdf"')


@pytest.mark.parametrize("make", ["not-a-database", "missing-directory"])
def test_a_store_that_cannot_be_used_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: str
) -> None:
    path = tmp_path / "store.sqlite3"
    if make == "not-a-database":
        path.write_text("these are not the bytes of a SQLite file" * 100)
    else:
        path = tmp_path / "nowhere" / "store.sqlite3"
    status, _, err = cli(capsys, "list", "--store", str(path))
    assert status == 2
    assert str(path) in err


def test_replay_reports_recorded_operations_the_code_no_longer_reaches(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path
) -> None:
    _, out, _ = cli(capsys, "run", f"{SHOP}:broken", "--store", store, "--json")
    file = tmp_path / "broken.json"
    file.write_text(out)
    status, out, _ = cli(capsys, "replay", f"{SHOP}:broken", str(file))
    assert (status, out) == (0, "OK: the code replays the history to the same outcome\n")
    status, out, _ = cli(capsys, "replay", f"{SHOP}:order", str(file))  # fails at once
    assert status == 1
    assert "ends FAILED without reaching the recorded STEP 'reserve'" in out


def test_replay_checks_every_history_given_and_fails_if_any_differs(
    capsys: pytest.CaptureFixture[str], recorded: str, store: str, tmp_path: Path
) -> None:
    _, out, _ = cli(capsys, "run", f"{SHOP}:broken", "--store", store, "--json")
    other = tmp_path / "broken.json"
    other.write_text(out)
    status, out, _ = cli(capsys, "replay", f"{SHOP}:order", recorded, str(other))
    assert status == 1
    first, second = out.splitlines()
    assert first == f"{recorded}: OK: the code replays the history to the same outcome"
    assert second.startswith(f"{other}: NON-DETERMINISTIC")


def test_a_run_records_error_types_under_the_module_name_lambda_would_use(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path
) -> None:
    workflow = tmp_path / "billing.py"
    workflow.write_text(
        "from durable_async import RetryPresets, StepConfig, durable_execution\n"
        "class Declined(Exception):\n"
        "    pass\n"
        "def charge(step):\n"
        "    raise Declined('no funds')\n"
        "@durable_execution\n"
        "async def handler(event, ctx):\n"
        "    config = StepConfig(retry_strategy=RetryPresets.none())\n"
        "    return await ctx.step(charge, name='charge', config=config)\n"
    )
    status, out, _ = cli(capsys, "run", f"{workflow}:handler", "--store", store)
    assert status == 1
    # As deployed (handler "billing.handler"), not a name private to the CLI.
    assert "error=billing.Declined: no funds" in out


# -- a failure's traceback: each part once, whatever shape the stack trace was recorded in ----


def test_a_failed_run_prints_the_traceback_header_and_the_error_once(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    status, _, err = cli(capsys, "run", f"{SHOP}:broken", "--store", store)
    assert status == 1
    source = SHOP.read_text().splitlines()
    line = source.index('    raise ValueError("card declined")') + 1
    explained = err[err.index("failed at") :]
    assert explained == (
        "failed at STEP charge after 1 attempt(s)\n"
        "Traceback (most recent call last):\n"
        f'  File "{SHOP}", line {line}, in _decline\n'
        '    raise ValueError("card declined")\n'
        "ValueError: card declined\n"
    )


SDK_STEP = Path(__file__).resolve().parent.parent / "durable_async" / "_operations" / "step.py"


@pytest.mark.parametrize(
    ("stack_trace", "printed"),
    [
        pytest.param(  # durable_async's own: header, frames (an SDK one among them), error
            (
                "Traceback (most recent call last):",
                '  File "/home/me/shop.py", line 9, in order',
                "    await ctx.step(charge)",
                f'  File "{SDK_STEP}", line 10, in run',
                "    return await body()",
                '  File "/home/me/shop.py", line 7, in charge',
                '    raise ValueError("card declined")',
                "ValueError: card declined",
            ),
            "Traceback (most recent call last):\n"
            '  File "/home/me/shop.py", line 9, in order\n'
            "    await ctx.step(charge)\n"
            '  File "/home/me/shop.py", line 7, in charge\n'
            '    raise ValueError("card declined")\n'
            "ValueError: card declined\n",
            id="durable_async",
        ),
        pytest.param(  # cut to fit the service's limit: its header went with its first lines
            (
                '  File "/home/me/shop.py", line 7, in charge',
                '    raise ValueError("card declined")',
                "ValueError: card declined",
            ),
            "Traceback (most recent call last):\n"
            '  File "/home/me/shop.py", line 7, in charge\n'
            '    raise ValueError("card declined")\n'
            "ValueError: card declined\n",
            id="durable_async-truncated",
        ),
        pytest.param(  # chained: one header per exception, the last exception line once
            (
                "Traceback (most recent call last):",
                '  File "/home/me/shop.py", line 3, in lookup',
                '    return {}["card"]',
                "KeyError: 'card'",
                "The above exception was the direct cause of the following exception:",
                "Traceback (most recent call last):",
                '  File "/home/me/shop.py", line 7, in charge',
                '    raise ValueError("card declined") from error',
                "ValueError: card declined",
            ),
            "Traceback (most recent call last):\n"
            '  File "/home/me/shop.py", line 3, in lookup\n'
            '    return {}["card"]\n'
            "KeyError: 'card'\n"
            "The above exception was the direct cause of the following exception:\n"
            "Traceback (most recent call last):\n"
            '  File "/home/me/shop.py", line 7, in charge\n'
            '    raise ValueError("card declined") from error\n'
            "ValueError: card declined\n",
            id="durable_async-chained",
        ),
        pytest.param(  # only SDK frames: no header without frames under it
            (
                "Traceback (most recent call last):",
                f'  File "{SDK_STEP}", line 10, in run',
                "    return await body()",
                "ValueError: card declined",
            ),
            "ValueError: card declined\n",
            id="sdk-frames-only",
        ),
        pytest.param(  # AWS's JavaScript SDK: error.stack, its error line first
            ("ValueError: card declined", "    at charge (/var/task/shop.js:7:11)"),
            "ValueError: card declined\n    at charge (/var/task/shop.js:7:11)\n",
            id="javascript",
        ),
        pytest.param(None, "ValueError: card declined\n", id="none"),
        pytest.param((), "ValueError: card declined\n", id="empty"),
    ],
)
def test_a_failure_prints_each_part_of_its_recorded_traceback_once(
    stack_trace: tuple[str, ...] | None, printed: str
) -> None:
    import io

    from durable_async._wire.enums import OperationStatus, OperationType
    from durable_async._wire.models import ErrorObject, Operation, StepDetails
    from durable_async.cli._commands import _explain_failure
    from durable_async.testing import History

    error = ErrorObject(message="card declined", type="ValueError", stack_trace=stack_trace)
    step = Operation(
        id="s",
        type=OperationType.STEP,
        status=OperationStatus.FAILED,
        name="charge",
        step_details=StepDetails(attempt=1, error=error),
    )
    out = io.StringIO()
    _explain_failure(History([step]), None, out)
    assert out.getvalue() == "failed at STEP charge after 1 attempt(s)\n" + printed


# -- --aws: configuration errors are usage errors; no message quotes a callback ID ----------


def aws_env(monkeypatch: pytest.MonkeyPatch, home: Path, **env: str) -> None:
    """AWS configuration from ``env`` alone: no profile, no config files, no IMDS."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


AWS_COMMANDS = [
    ["callback", "succeed", "abc", '{"a": 1}', "--aws"],
    ["list", "--aws", "--function", "shop"],
    ["show", "arn:x", "--aws"],
]


@pytest.mark.parametrize("argv", AWS_COMMANDS, ids=["callback", "list", "show"])
def test_an_aws_command_without_a_region_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
) -> None:
    aws_env(monkeypatch, tmp_path, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
    status, out, err = cli(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("durable-async: error: cannot create the Lambda client: ")
    assert "You must specify a region" in err
    assert "AWS_DEFAULT_REGION" in err  # and how to give one
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        (("AWS_PROFILE", "nowhere"), "The config profile (nowhere) could not be found"),
        (("AWS_DEFAULT_REGION", "not a region!"), "doesn't match a supported format"),
        (("AWS_RETRY_MODE", "sometimes"), 'Invalid value provided to "mode"'),
        (("AWS_ENDPOINT_URL_LAMBDA", "not-a-url"), "Invalid endpoint: not-a-url"),
    ],
    ids=["profile", "region", "retry-mode", "endpoint"],
)
def test_a_bad_aws_setting_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    setting: tuple[str, str],
    problem: str,
) -> None:
    aws_env(
        monkeypatch, tmp_path,
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y",
    )  # fmt: skip
    monkeypatch.setenv(*setting)
    status, _, err = cli(capsys, "callback", "heartbeat", "abcd", "--aws")
    assert status == 2
    assert err.startswith("durable-async: error: cannot create the Lambda client: ")
    assert problem in err
    assert err.count("\n") == 1


def test_a_bug_under_aws_is_not_passed_off_as_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from durable_async.cli import _aws

    async def broken_show(client: Any, args: Any) -> int:
        raise KeyError("a bug")

    aws_env(monkeypatch, tmp_path, **FAKE_AWS_ENV)
    monkeypatch.setattr(_aws, "_show", broken_show)
    with pytest.raises(KeyError, match="a bug"):
        main(["show", "arn:x", "--aws"])


@pytest.mark.parametrize(
    ("action", "callback_id"),
    [
        ("succeed", "abc"),  # shorter than anything the generic redaction would touch
        ("fail", "Q2FsbGJhY2s+SUQ/Zm9yIHJldmlldw=="),  # base64: percent-encoded in the URL
        ("heartbeat", "0279e214c9ab47908cb7828755fbef2e"),
    ],
)
def test_an_aws_callback_error_never_quotes_the_callback_id(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    action: str,
    callback_id: str,
) -> None:
    from urllib.parse import quote, quote_plus

    aws_env(
        monkeypatch, tmp_path, **FAKE_AWS_ENV,
        AWS_MAX_ATTEMPTS="1",  # refused at once, and not retried
        AWS_ENDPOINT_URL_LAMBDA=f"http://127.0.0.1:{closed_port()}",
    )  # fmt: skip
    payload = ['{"a": 1}'] if action != "heartbeat" else []
    status, out, err = cli(capsys, "callback", action, callback_id, *payload, "--aws")
    assert (status, out) == (2, "")
    assert err.startswith("durable-async: error: SendDurableExecutionCallback")
    assert "Could not connect to the endpoint URL" in err
    assert "/durable-execution-callbacks/<" in err  # the URL is there, its ID is not
    for form in {callback_id, quote(callback_id, safe=""), quote_plus(callback_id)}:
        assert form not in err


def test_a_service_error_about_a_callback_does_not_quote_its_id() -> None:
    from botocore.exceptions import ClientError

    from durable_async.cli._aws import callback_error_message

    callback_id = "Q2FsbGJhY2s+SUQ/Zm9yIHJldmlldw=="
    error = ClientError(
        {
            "Error": {
                "Code": "ResourceNotFoundException",
                "Message": f"Callback {callback_id} is not in STARTED state",
            },
            "ResponseMetadata": {"HTTPStatusCode": 404},
        },
        "SendDurableExecutionCallbackSuccess",
    )
    message = callback_error_message(error, "SendDurableExecutionCallbackSuccess", callback_id)
    assert message == (
        "SendDurableExecutionCallbackSuccess failed: ResourceNotFoundException: "
        "Callback <callback id> is not in STARTED state"
    )


# -- answering a local callback that already ended -------------------------------------------


def test_an_ended_callback_is_named_by_its_operation_not_by_any_id(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    cli(capsys, "run", f"{SHOP}:approval", "--input", "{}", "--store", store)
    callback_id = only_callback(store)
    status, _, _ = cli(capsys, "callback", "succeed", callback_id, '{"approved": true}',
                       "--store", store)  # fmt: skip
    assert status == 0
    with closing(sqlite3.connect(store)) as db:
        (state,) = db.execute("SELECT state FROM executions").fetchone()
    operation_ids = [op["Id"] for op in json.loads(state)["operations"]]
    ended = "durable-async: error: this callback (operation 'review create callback id') "
    for answer in (["succeed", callback_id, "{}"], ["heartbeat", callback_id]):
        status, out, err = cli(capsys, "callback", *answer, "--store", store)
        assert (status, out, err) == (2, "", f"{ended}already ended (SUCCEEDED)\n")
        assert not any(op_id in err for op_id in operation_ids)
    status, _, err = cli(capsys, "callback", "succeed", callback_id[::-1], "{}", "--store", store)
    assert (status, err) == (2, f"durable-async: error: no callback with that ID in {store}\n")
