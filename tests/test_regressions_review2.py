"""Regression tests for bugs found in the second review (each failed before its fix).

Only the in-memory backend is used; nothing sleeps on a timer (loop turns stand in for
"the invocation should have ended by now"). Service behaviour cited here is that of AWS's
local backend (``aws_durable_execution_sdk_python_testing``: ``checkpoint/validators``,
``executor.py``), which mirrors the durable-execution service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import pytest
from support import invoke_once, sent_updates, start

from durable_async import (
    BackendError,
    DurableContext,
    NonDeterministicExecutionError,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async._invocation import RESPONSE_LIMIT_BYTES
from durable_async._wire.enums import (
    OperationAction,
)
from durable_async._wire.models import (
    ErrorObject,
)
from durable_async.testing import LocalRunner, MemoryBackend

LOG = logging.getLogger(__name__)

#: The service's bound on a serialized error object (validators/checkpoint.py).
MAX_ERROR_PAYLOAD_SIZE_BYTES = 32768
#: Remaining time within the SDK's safety margin: the deadline is already due.


async def quick(step: StepContext) -> int:
    return 1


async def outcome_of(coro: Any) -> Any:
    """What an invocation ended with: its output, or the kind of error it raised."""
    try:
        return await coro
    except asyncio.CancelledError:
        return "CancelledError escaped"
    except BackendError as error:
        return ("BackendError", error.retryable)


# -- 3. fatal non-determinism masked by a large result's EXECUTION checkpoint ------------


@pytest.mark.anyio
async def test_swallowed_non_determinism_is_not_committed_as_success() -> None:
    backend = MemoryBackend()
    invocations = 0

    async def charge(step: StepContext) -> int:
        return 1

    async def refund(step: StepContext) -> int:
        return 2

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        nonlocal invocations
        invocations += 1
        if invocations == 1:
            await ctx.step(charge)
            await ctx.wait(seconds=5)
            return "first deployment"
        # The history has `charge` here: non-deterministic. Swallowed; rt.fatal is meant
        # to decide the outcome anyway.
        with contextlib.suppress(NonDeterministicExecutionError):
            await ctx.step(refund)
        return "x" * (RESPONSE_LIMIT_BYTES + 10)

    result = await LocalRunner(handler, backend).run()
    assert result.status == "FAILED"
    execution = backend.executions[result.arn]
    assert execution.result_update is None or execution.result_update.action is not (
        OperationAction.SUCCEED
    ), "the execution was checkpointed SUCCEEDED while the invocation reported FAILED"


# -- 4. deadline wind-down returns a PENDING the service rejects -------------------------


# -- 5. a handler that raises CancelledError itself ends PENDING with nothing pending ----


@pytest.mark.anyio
async def test_handler_raising_cancelled_error_is_not_reported_pending() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        value = await ctx.step(quick)
        helper = asyncio.get_running_loop().create_future()
        helper.cancel()  # e.g. a helper task cancelled elsewhere
        await helper
        return value

    output = await outcome_of(invoke_once(handler, backend, arn))
    # PENDING would leave nothing pending on the service (it refuses that): a CancelledError
    # that escaped user code fails the execution like any other bug.
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"] == "asyncio.CancelledError"


# -- 6. error objects over the service's 32 KiB limit --------------------------------------


@pytest.mark.anyio
async def test_step_errors_sent_fit_the_services_error_limit() -> None:
    backend = MemoryBackend()

    async def call_api(step: StepContext) -> None:
        raise RuntimeError("<html>" + "x" * 40_000 + "</html>")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(call_api, config=StepConfig(retry_strategy=RetryPresets.none()))

    await LocalRunner(handler, backend).run()
    sizes = [
        len(json.dumps(error_dict(u.error))) for u in sent_updates(backend) if u.error is not None
    ]
    assert sizes, "the step's failure was checkpointed"
    assert max(sizes) <= MAX_ERROR_PAYLOAD_SIZE_BYTES


def error_dict(error: ErrorObject) -> dict[str, Any]:
    """The error as the service measures it (``json.dumps(error.to_dict())``)."""
    fields = {
        "ErrorMessage": error.message,
        "ErrorType": error.type,
        "ErrorData": error.data,
        "StackTrace": list(error.stack_trace) if error.stack_trace is not None else None,
    }
    return {k: v for k, v in fields.items() if v is not None}
