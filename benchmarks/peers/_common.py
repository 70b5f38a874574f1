"""What the per-SDK workload modules share (stdlib only: each runs in its SDK's own venv).

A workload module (``sdk_<name>.py``) defines ``Workloads``: one method per workload,
each building that SDK's handler and running it through the SDK's synchronous Lambda
entry point, the way Lambda calls it. ``main(Workloads)`` is its command line:

* ``run WORKLOAD N``: a zero-latency workload in this (fresh) process; prints one JSON line
  ``{"seconds", "result", "calls", "threads", "rss_mib", "peak_rss_mib"}``.
* ``serve``: a Lambda worker for ``compare.py``'s loopback endpoint: one JSON line in
  (``{"function", "event"}``), the invocation output out, with ``_seconds`` (time in the
  handler) added; the SDK's default client talks to dex-local-runner.
* ``cold``: ``serve`` for exactly one event in a fresh process, also reporting the time to
  import the SDK and define the handler (``_init_seconds``), the RSS after and the
  process's CPU time (``_cpu``).
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

ARN = "arn:aws:lambda:us-west-2:123456789012:function:bench:$LATEST/durable-execution/bench/0001"
_peak_threads = 0


def note_threads() -> None:
    """Record the number of live threads (called from step bodies)."""
    global _peak_threads
    count = threading.active_count()
    if count > _peak_threads:
        _peak_threads = count


def execution_event(payload: Any, operations: list[dict[str, Any]] | None = None) -> Any:
    """An invocation event for a fresh execution with input ``payload`` (plus history)."""
    execution = {
        "Id": ARN.rsplit("/", 1)[-1],  # AWS's SDK finds the execution by the ARN's tail
        "Type": "EXECUTION",
        "Status": "STARTED",
        "StartTimestamp": 1_700_000_000_000,
        "ExecutionDetails": {"InputPayload": json.dumps(payload)},
    }
    return {
        "DurableExecutionArn": ARN,
        "CheckpointToken": "token-0",
        "InitialExecutionState": {"Operations": [execution, *(operations or [])]},
    }


class FakeLambdaApi:
    """A zero-latency Lambda API with botocore's method names and shapes (sync).

    Answers every checkpoint at once with a fresh token and no new state, and keeps the
    updates when ``record`` is set (to build a history to replay).
    """

    def __init__(self, *, record: bool = False) -> None:
        self.calls = 0
        self.record = record
        self.updates: list[dict[str, Any]] = []
        self._tokens = itertools.count(1)

    def checkpoint_durable_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.record:
            self.updates.extend(kwargs.get("Updates") or ())
        return {
            "CheckpointToken": f"token-{next(self._tokens)}",
            "NewExecutionState": {"Operations": []},
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    def get_durable_execution_state(self, **kwargs: Any) -> dict[str, Any]:
        return {"Operations": [], "ResponseMetadata": {"HTTPStatusCode": 200}}


def history(updates: list[dict[str, Any]], steps: int) -> list[dict[str, Any]]:
    """The operations a backend would hold after the first ``steps`` steps succeeded."""
    ops: dict[str, dict[str, Any]] = {}
    for update in updates:
        op_id = update["Id"]
        if update.get("Type") != "STEP":
            continue
        if op_id not in ops:
            if len(ops) == steps:
                break
            ops[op_id] = {
                "Id": op_id,
                "Type": "STEP",
                "SubType": update.get("SubType", "Step"),
                "Status": "STARTED",
                "StartTimestamp": 1_700_000_000_000,
                "StepDetails": {"Attempt": 1},
            }
            for key in ("Name", "ParentId"):
                if update.get(key) is not None:
                    ops[op_id][key] = update[key]
        if update.get("Action") == "SUCCEED":
            op = ops[op_id]
            op["Status"] = "SUCCEEDED"
            op["EndTimestamp"] = 1_700_000_000_001
            op["StepDetails"]["Result"] = update.get("Payload")
    done = [op for op in ops.values() if op["Status"] == "SUCCEEDED"]
    if len(done) != steps:
        raise RuntimeError(f"recorded {len(done)} succeeded steps, wanted {steps}")
    return done


class FakeLambdaContext:
    """What the SDKs read from Lambda's context object."""

    aws_request_id = "bench-request"
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:bench"
    memory_limit_in_mb = 1024
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    tenant_id = None

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def rss_mib() -> float:
    """Current resident set size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_status(out: Any) -> Any:
    """The invocation's result, decoded; raises unless it succeeded."""
    if not isinstance(out, dict) or out.get("Status") != "SUCCEEDED":
        raise RuntimeError(f"invocation did not succeed: {str(out)[:500]}")
    result = out.get("Result")
    return json.loads(result) if isinstance(result, str) else result


Workload = Callable[[int], tuple[float, Any, int]]


def _serve_one(handlers: Any, line: str, context: FakeLambdaContext) -> dict[str, Any]:
    request = json.loads(line)
    handler = getattr(handlers, request["function"])
    started = time.perf_counter()
    out = handler(request["event"], context)
    out = dict(out)
    out["_seconds"] = time.perf_counter() - started
    return out


def main(workloads: type, loopback: Callable[[], Any]) -> None:
    """The workload module's command line (see the module docstring)."""
    mode = sys.argv[1]
    if mode == "run":
        name, n = sys.argv[2], int(sys.argv[3])
        seconds, result, calls = getattr(workloads(), name)(n)
        print(
            json.dumps(
                {
                    "seconds": seconds,
                    "result": result,
                    "calls": calls,
                    "threads": _peak_threads,
                    "rss_mib": rss_mib(),
                    "peak_rss_mib": peak_rss_mib(),
                }
            ),
            flush=True,
        )
    elif mode == "cold":
        started = time.perf_counter()
        handlers = loopback()
        init = time.perf_counter() - started
        out = _serve_one(handlers, sys.stdin.readline(), FakeLambdaContext())
        out["_init_seconds"] = init
        out["_rss_mib"] = rss_mib()
        out["_cpu"] = time.process_time()  # the whole process's CPU time so far
        print(json.dumps(out), flush=True)
    elif mode == "serve":
        handlers = loopback()
        context = FakeLambdaContext()
        for line in sys.stdin:
            print(json.dumps(_serve_one(handlers, line, context)), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
