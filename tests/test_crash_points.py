"""SIGKILL at every point of an operation's life; the next invocation loses nothing.

Each case runs the execution one invocation per process (``tests/crash_harness.py``),
kills the process at one point (before START is sent, after it is acknowledged, while the
body runs, after the body returns and before SUCCEED is sent, after SUCCEED is sent and
before its acknowledgement; for callbacks and invokes, the points of their START), then
lets later invocations finish the execution. Bodies count their runs in a side file
outside the process. The state file plays the service: what it accepted survives.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
from crash_harness import (
    CALLBACK_ANSWER,
    CRASH_ENV,
    INVOKE_ANSWER,
    SIDE_ENV,
    FileBackend,
    invocation_process,
)

from durable_async._wire.enums import OperationStatus
from durable_async._wire.models import Operation

#: Invocations run in processes forked from a server that imported the SDK once: a
#: fresh interpreter per invocation would cost most of the test's time in imports.
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(["crash_harness"])
_TERMINAL = {
    OperationStatus.SUCCEEDED,
    OperationStatus.FAILED,
    OperationStatus.TIMED_OUT,
    OperationStatus.CANCELLED,
    OperationStatus.STOPPED,
}
_RUN_POINTS = [
    "target:START:before_send",
    "target:START:after_ack",
    "target:body",
    "target:SUCCEED:before_send",
    "target:SUCCEED:before_ack",
]
_START_POINTS = [
    "target:START:before_send",
    "target:START:before_ack",
    "target:START:after_ack",
]
CASES = (
    [("step_at_least_once", p) for p in _RUN_POINTS]
    + [("plain_step_at_least_once", p) for p in _RUN_POINTS]
    + [("step_at_most_once", p) for p in _RUN_POINTS]
    + [("child_context", p) for p in _RUN_POINTS]
    + [("map_branch", p.replace("target", "map-item-1")) for p in _RUN_POINTS]
    + [("callback", p) for p in _START_POINTS]
    + [("invoke", p) for p in _START_POINTS]
)


@attrs.frozen
class Outcome:
    output: dict[str, Any]
    runs: Counter[tuple[str, int]]
    kills: int
    #: (operation ID, name, action) of every update the backend accepted, all invocations.
    accepted: Counter[tuple[str, str | None, str]]


def drive(work: Path, scenario: str, crash_at: str | None) -> Outcome:
    """Invoke ``scenario`` process after process until it ends, killing one at ``crash_at``.

    After every invocation, killed or not, every operation that had ended before must be
    unchanged: a crash may lose what was never acknowledged, never what was recorded.
    """
    state, side = work / "state.pickle", work / "runs.txt"
    backend = FileBackend(state)
    backend.start_execution(json.dumps({"order": 1}))
    backend.save()
    env = {SIDE_ENV: str(side)}
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    out = work / "output.json"
    ended: dict[str, Operation] = {}
    kills = 0
    for _ in range(12):
        out.unlink(missing_ok=True)
        proc = _PROCESSES.Process(
            target=invocation_process, args=(state, scenario, env, out), daemon=True
        )
        proc.start()
        proc.join(120)
        assert proc.exitcode is not None, "the invocation process hung"
        backend = FileBackend.load(state)
        (execution,) = backend.executions.values()
        for op_id, before in ended.items():
            assert execution.operations[op_id] == before, f"recorded {op_id} changed"
        ended = {i: op for i, op in execution.operations.items() if op.status in _TERMINAL}
        if proc.exitcode == -signal.SIGKILL:
            kills += 1
            env.pop(CRASH_ENV)  # Lambda's next sandbox is a fresh one
            continue
        assert proc.exitcode == 0, f"the invocation process failed ({proc.exitcode})"
        output: dict[str, Any] = json.loads(out.read_text())
        if output["Status"] != "PENDING":
            runs: Counter[tuple[str, int]] = Counter()
            if side.exists():
                for line in side.read_text().splitlines():
                    name, attempt = line.rsplit(" ", 1)
                    runs[(name, int(attempt))] += 1
            accepted = Counter((u.id, u.name, u.action.value) for u in execution.updates)
            return Outcome(output, runs, kills, accepted)
        _serve(backend)
    pytest.fail(f"{scenario} did not end within 12 invocations")


def _serve(backend: FileBackend) -> None:
    """Play the world while the execution is suspended: answer, finish, or let time pass."""
    (arn,) = backend.executions
    acted = False
    for pending in backend.pending_invokes(arn):
        backend.complete_invoke(arn, pending.operation_id, result=INVOKE_ANSWER)
        acted = True
    for callback_id in backend.open_callbacks(arn):
        backend.complete_callback(callback_id, CALLBACK_ANSWER)
        acted = True
    if not acted:
        due = backend.next_due(arn)
        assert due is not None, "suspended with nothing to wait for"
        backend.advance_to(due)
    backend.save()


_REFERENCE: dict[str, Outcome] = {}


def reference(tmp_path_factory: pytest.TempPathFactory, scenario: str) -> Outcome:
    if scenario not in _REFERENCE:
        _REFERENCE[scenario] = drive(tmp_path_factory.mktemp(scenario), scenario, None)
    return _REFERENCE[scenario]


@pytest.mark.parametrize(("scenario", "crash_at"), CASES)
def test_sigkill_at_each_point_loses_nothing_and_reruns_only_lost_attempts(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, scenario: str, crash_at: str
) -> None:
    clean = reference(tmp_path_factory, scenario)
    crashed = drive(tmp_path, scenario, crash_at)

    assert crashed.kills == 1, "the kill point was never reached"
    assert clean.output["Status"] == "SUCCEEDED"
    assert crashed.output["Status"] == "SUCCEEDED", crashed.output
    assert json.loads(crashed.output["Result"]) == json.loads(clean.output["Result"])
    # The steps around the crashed operation ran once: "first" was recorded before the
    # kill and replays; "last" was not reached before it.
    assert crashed.runs[("first", 1)] == 1
    assert crashed.runs[("last", 1)] == 1
    target = crash_at.split(":")[0]
    target_runs = {k: n for k, n in crashed.runs.items() if k[0] == target}
    if scenario == "step_at_most_once":
        # Never an attempt twice; an attempt interrupted after START is retried as the
        # next attempt (the strategy allows three), so the result is the clean one.
        assert all(n == 1 for n in target_runs.values()), target_runs
    else:
        # At least once per retry: at most one extra run, for the one lost attempt.
        assert sum(target_runs.values()) <= clean.runs[(target, 1)] + 1, target_runs
    if crash_at.endswith(("body", "SUCCEED:before_send")) and scenario != "step_at_most_once":
        assert sum(target_runs.values()) == 2, "the attempt the kill lost must run again"
    if crash_at.endswith("SUCCEED:before_ack"):
        assert sum(target_runs.values()) == 1, "a recorded success must not run again"
    for (name, _), count in crashed.runs.items():
        assert count <= 2, (name, crashed.runs)
    # Every completion is recorded once; a callback is created and a function invoked
    # once, however the START's acknowledgement was lost.
    for (_, op_name, action), count in crashed.accepted.items():
        if action in {"SUCCEED", "FAIL"}:
            assert count == 1, (op_name, action, crashed.accepted)
    if scenario in {"callback", "invoke"}:
        starts = [k for k in crashed.accepted.elements() if k[1:] == (target, "START")]
        assert len(starts) == 1, crashed.accepted
