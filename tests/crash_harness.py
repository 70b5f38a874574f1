"""Kill a real process with SIGKILL at a chosen point of an operation's life, then resume.

One Lambda invocation runs in a process of its own (``invocation_process``, forked by
the tests; or ``python crash_harness.py STATE SCENARIO`` by hand). The execution's state
lives in the file STATE (a ``MemoryBackend`` pickled after every checkpoint the backend
accepts, so it outlives the process the way the service's state outlives a Lambda
sandbox). The environment variable ``DURABLE_CRASH_AT`` names the kill point,
``NAME:ACTION:PHASE`` (``PHASE`` is ``before_send``, ``before_ack`` or ``after_ack``) or
``NAME:body``; when the process reaches it, it sends itself SIGKILL: no ``finally``, no
flush, no cleanup.

Every body the scenarios run appends one line (``name attempt``) to the side file named
by ``DURABLE_CRASH_SIDE_FILE`` with a single ``write`` on an ``O_APPEND`` descriptor, so
the count survives the kill. ``tests/test_crash_points.py`` drives the invocations and
checks what the next ones do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from durable_async import (
    DurableContext,
    DurableHandler,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepSemantics,
    create_retry_strategy,
    durable_execution,
)
from durable_async._wire.models import CheckpointRequest, CheckpointResponse
from durable_async.testing import (
    FakeLambdaContext,
    LocalRunner,
    MemoryBackend,
    MemoryExecution,
    VirtualClock,
)

CRASH_ENV = "DURABLE_CRASH_AT"
SIDE_ENV = "DURABLE_CRASH_SIDE_FILE"
#: Kill phases of a checkpoint call carrying the named operation's update.
PHASES = ("before_send", "before_ack", "after_ack")


def _kill_point() -> tuple[str, ...] | None:
    raw = os.environ.get(CRASH_ENV)
    return tuple(raw.split(":")) if raw else None


def die() -> None:
    """SIGKILL this process: what Lambda's sandbox being torn down looks like from inside."""
    os.kill(os.getpid(), signal.SIGKILL)


def record_run(name: str, attempt: int) -> None:
    """Count one run of a body in the side file (survives SIGKILL: one append ``write``)."""
    side = os.environ.get(SIDE_ENV)
    if not side:
        return
    fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{name} {attempt}\n".encode())
    finally:
        os.close(fd)


def body_point(name: str) -> None:
    """Die here if the kill point is ``NAME:body``."""
    if _kill_point() == (name, "body"):
        die()


class FileBackend(MemoryBackend):
    """A ``MemoryBackend`` whose state is saved to a file after every accepted checkpoint."""

    def __init__(self, path: Path, clock: VirtualClock | None = None) -> None:
        super().__init__(clock=clock)
        self.path = path

    @classmethod
    def load(cls, path: Path) -> FileBackend:
        if not path.exists():
            return cls(path)
        executions, now = pickle.loads(path.read_bytes())
        backend = cls(path, VirtualClock(now))
        backend.executions = executions
        return backend

    def save(self) -> None:
        state: tuple[dict[str, MemoryExecution], datetime] = (self.executions, self.now)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(state))
        os.replace(tmp, self.path)

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        point = _kill_point()
        hit = point is not None and len(point) == 3 and _carries(params, point[0], point[1])
        phase = point[2] if hit and point is not None else None
        if phase == "before_send":
            die()
        response = await super().checkpoint(params, logger)
        self.save()
        if phase == "before_ack":
            die()
        if phase == "after_ack":
            # Let the SDK take the acknowledgement in (its futures resolve on the next
            # loop turns), then die.
            asyncio.get_running_loop().call_soon(die)
        return response


def _carries(params: CheckpointRequest, name: str, action: str) -> bool:
    return any(u.name == name and u.action.value == action for u in params.updates)


# -- scenarios: each puts the operation named "target" between two plain steps ----------

_AMO = StepConfig(
    step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3, initial_delay=Duration(1), jitter_strategy=JitterStrategy.NONE
        )
    ),
)
_ALO = StepConfig(step_semantics=StepSemantics.AT_LEAST_ONCE_PER_RETRY)


def _plain(step: StepContext, name: str) -> str:
    record_run(name, step.attempt)
    return f"{name}-done"


async def _target_body(step: StepContext, value: int) -> dict[str, int]:
    record_run("target", step.attempt)
    await asyncio.sleep(0)  # the body outlasts a loop turn: START goes out on its own
    body_point("target")
    return {"value": value * 2}


async def _around(ctx: DurableContext, middle: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    first = await ctx.step(_plain, "first", name="first")
    got = await middle()
    last = await ctx.step(_plain, "last", name="last")
    return {"first": first, "target": got, "last": last}


def _plain_target_body(step: StepContext, value: int) -> dict[str, int]:
    record_run("target", step.attempt)
    body_point("target")  # SIGKILL from the worker thread that runs a plain body
    return {"value": value * 2}


@durable_execution
async def plain_step_at_least_once(event: Any, ctx: DurableContext) -> dict[str, Any]:
    return await _around(ctx, lambda: ctx.step(_plain_target_body, 21, name="target", config=_ALO))


@durable_execution
async def step_at_least_once(event: Any, ctx: DurableContext) -> dict[str, Any]:
    return await _around(ctx, lambda: ctx.step(_target_body, 21, name="target", config=_ALO))


@durable_execution
async def step_at_most_once(event: Any, ctx: DurableContext) -> dict[str, Any]:
    return await _around(ctx, lambda: ctx.step(_target_body, 21, name="target", config=_AMO))


async def _child_body(child: DurableContext) -> list[Any]:
    record_run("target", 1)
    inner = await child.step(_plain, "inner", name="inner")
    body_point("target")
    return [inner, "child-done"]


@durable_execution
async def child_context(event: Any, ctx: DurableContext) -> dict[str, Any]:
    return await _around(ctx, lambda: ctx.run_in_child_context(_child_body, name="target"))


@durable_execution
async def callback(event: Any, ctx: DurableContext) -> dict[str, Any]:
    async def middle() -> Any:
        created = await ctx.create_callback(name="target", timeout=3600)
        return await created.result()

    return await _around(ctx, middle)


@durable_execution
async def invoke(event: Any, ctx: DurableContext) -> dict[str, Any]:
    return await _around(ctx, lambda: ctx.invoke("echo", {"n": 7}, name="target"))


async def _branch(item_ctx: DurableContext, item: int, index: int, items: Any) -> Any:
    name = f"map-item-{index}"
    record_run(name, 1)
    got = await item_ctx.step(_plain, f"s{index}", name="s")
    body_point(name)
    return [item, got]


@durable_execution
async def map_branch(event: Any, ctx: DurableContext) -> dict[str, Any]:
    async def middle() -> Any:
        batch = await ctx.map([10, 20, 30], _branch, name="target")
        return batch.get_results()

    return await _around(ctx, middle)


SCENARIOS: dict[str, DurableHandler[Any]] = {
    "step_at_least_once": step_at_least_once,
    "plain_step_at_least_once": plain_step_at_least_once,
    "step_at_most_once": step_at_most_once,
    "child_context": child_context,
    "callback": callback,
    "invoke": invoke,
    "map_branch": map_branch,
}
#: What the service answers for the callback and the chained invoke (JSON strings).
CALLBACK_ANSWER = json.dumps("approved")
INVOKE_ANSWER = json.dumps({"echoed": 7})


async def _invoke_once(state: Path, scenario: str) -> dict[str, Any]:
    backend = FileBackend.load(state)
    (arn,) = backend.executions
    handler = SCENARIOS[scenario]
    event = LocalRunner(handler, backend).event(arn)
    return await handler.invoke_async(event, FakeLambdaContext(), client=backend)


def invocation_process(state: Path, scenario: str, env: dict[str, str], out: Path) -> None:
    """One invocation in a process of its own (a forkserver child): output to ``out``."""
    os.environ.update(env)
    for key in (CRASH_ENV, SIDE_ENV):
        if key not in env:
            os.environ.pop(key, None)
    output = asyncio.run(_invoke_once(state, scenario))
    out.write_text(json.dumps(output))


def main(argv: list[str]) -> int:
    state, scenario = Path(argv[1]), argv[2]
    output = asyncio.run(_invoke_once(state, scenario))
    sys.stdout.write(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
