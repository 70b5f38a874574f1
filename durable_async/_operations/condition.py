"""``ctx.wait_for_condition``: poll a check durably until a strategy says stop.

Each check runs as an attempt of a STEP operation (subtype ``WaitForCondition``); its new
state is checkpointed with every RETRY, so the next invocation resumes from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from durable_async._error_wire import error_object, rebuild_failure
from durable_async._errors import (
    BackendError,
    NonDeterministicExecutionError,
    WaitForConditionError,
)
from durable_async._failure_log import operation_failed
from durable_async._identity import OperationIdentity
from durable_async._logging import DurableLogger, LogScope, current_log_scope
from durable_async._operations._common import (
    RunningBody,
    body_hooks,
    call_user,
    report_end,
    report_start,
    until_ready,
    update,
)
from durable_async._serdes import SerDes, SerDesContext, check_payload_size, deserialize, serialize
from durable_async._waits import WaitStrategy
from durable_async._wire.enums import OperationAction, OperationStatus
from durable_async._wire.models import Operation, StepOptions

if TYPE_CHECKING:
    from durable_async._runtime import InvocationRuntime


@attrs.frozen
class WaitForConditionCheckContext:
    """What a check gets: its attempt number (1-based) and a durable logger."""

    attempt: int
    logger: DurableLogger


async def run_condition(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    recorded: Operation | None,
    check: Callable[..., Any],
    initial_state: Any,
    strategy: WaitStrategy,
    serdes: SerDes[Any] | None,
    logger_fields: dict[str, object],
) -> Any:
    """Replay or run one check of a condition."""
    context = SerDesContext(identity.id, rt.arn)
    stored_state: str | None = None
    attempts_made = 0
    if recorded is not None:
        details = recorded.step_details
        attempts_made = details.attempt if details else 0
        stored_state = details.result if details else None
        status = recorded.status
        if status is OperationStatus.SUCCEEDED:
            return (
                None if stored_state is None else await deserialize(serdes, stored_state, context)
            )
        if status is OperationStatus.FAILED:
            raise rebuild_failure(WaitForConditionError, details.error if details else None)
        if status is OperationStatus.PENDING:
            await until_ready(rt, identity)
    needs_start = recorded is None or recorded.status is not OperationStatus.STARTED
    await report_start(rt, identity, is_replayed=recorded is not None)

    while True:
        if needs_start:
            rt.batcher.enqueue(update(identity, OperationAction.START))
        needs_start = True
        attempt = attempts_made + 1
        fields = {**logger_fields, "operationId": identity.id, "attempt": attempt}
        if identity.name:
            fields["operationName"] = identity.name
        scope = LogScope(fields)
        check_context = WaitForConditionCheckContext(attempt, DurableLogger(rt.logger, scope))
        body = RunningBody(getattr(check, "__name__", None) or repr(check))
        reset = current_log_scope.set(scope)
        try:
            if stored_state is None:
                stored_state = await serialize(serdes, initial_state, context)
            state = (
                None if stored_state is None else await deserialize(serdes, stored_state, context)
            )
            async with body_hooks(rt, identity, is_replayed=recorded is not None, attempt=attempt):
                new_state = await call_user(rt, check, state, check_context, body=body)
            if body.misuse is not None:
                raise body.misuse
            payload = await serialize(serdes, new_state, context)
            check_payload_size(f"the state of condition {identity.name or identity.id}", payload)
            value = None if payload is None else await deserialize(serdes, payload, context)
            decision = strategy(value, attempt)
        except (NonDeterministicExecutionError, BackendError):
            raise
        except Exception as error:
            failure = body.misuse or error
            operation_failed(
                "wait_for_condition", identity.name, identity.id, fields, failure, attempt
            )
            recorded_error = error_object(failure)
            await rt.batcher.commit(update(identity, OperationAction.FAIL, error=recorded_error))
            await report_end(rt, identity, OperationStatus.FAILED, recorded_error)
            raise rebuild_failure(WaitForConditionError, recorded_error, error)  # noqa: B904
        finally:
            current_log_scope.reset(reset)
        if not decision.should_continue:
            await rt.batcher.commit(update(identity, OperationAction.SUCCEED, payload=payload))
            await report_end(rt, identity, OperationStatus.SUCCEEDED)
            return value
        delay = max(1, decision.delay_seconds)
        await rt.batcher.commit(
            update(
                identity,
                OperationAction.RETRY,
                payload=payload,
                step_options=StepOptions(next_attempt_delay_seconds=delay),
            )
        )
        # The next check runs in this invocation if it falls due while siblings still run.
        await until_ready(rt, identity)
        stored_state = payload
        attempts_made = attempt
