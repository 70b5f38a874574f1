"""``ctx.step``: run a callable once per attempt, checkpoint its outcome, retry durably.

Attempt bookkeeping follows the service: ``StepDetails.Attempt`` counts finished attempts,
so the attempt about to run is ``Attempt + 1``. START is fire-and-forget for at-least-once
steps, deferred so that it rides with the result in one call unless the body outlasts a
checkpoint round trip (so a plain body run in a thread costs one call, like an async one),
and awaited for at-most-once steps, whose body must not run before the service knows.

A pipelined step (``StepConfig(pipelined=True)`` or the handler's ``pipelined=True``, for
at-least-once steps only) does not wait for its SUCCEED to be recorded: the workflow goes on
while the update is queued. What a crash can cost then is in the README ("Pipelined
checkpointing"); the batcher keeps the order and fails the invocation if it is not recorded.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import attrs

from durable_async._config import StepConfig, StepSemantics
from durable_async._error_wire import STEP_INTERRUPTED_TYPE, error_object, rebuild_failure
from durable_async._errors import PayloadTooLargeError, SerDesError, StepError, StepInterruptedError
from durable_async._failure_log import attempt_failed, operation_failed
from durable_async._identity import OperationIdentity
from durable_async._logging import DurableLogger, LogScope, current_log_scope
from durable_async._operations._common import (
    RunningBody,
    call_user,
    report_end,
    until_ready,
    update,
)
from durable_async._serdes import (
    SerDesContext,
    check_payload_size,
    deserialize,
    deserialize_default,
    serialize,
)
from durable_async._wire.enums import OperationAction, OperationStatus
from durable_async._wire.models import ErrorObject, Operation, StepOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from durable_async._plugins import PluginDispatcher
    from durable_async._retry import RetryStrategy
    from durable_async._runtime import InvocationRuntime


@functools.cache
def _default_retry() -> RetryStrategy:
    """The strategy of steps without one, made on the first failure: a cold start needs none."""
    from durable_async._retry import RetryPresets

    return RetryPresets.default()


_PLAIN = (str, int, bool, type(None))


@attrs.frozen
class StepContext:
    """What a step body gets: its attempt number (1-based) and a durable logger."""

    attempt: int
    operation_id: str
    name: str | None
    _log_scope: LogScope = attrs.field(repr=False, eq=False)
    _base_logger: logging.Logger = attrs.field(repr=False, eq=False)
    _logger: DurableLogger | None = attrs.field(default=None, init=False, repr=False, eq=False)

    @property
    def logger(self) -> DurableLogger:
        """A logger tagged with the step's ID, name and attempt (made on first use)."""
        logger = self._logger
        if logger is None:
            logger = DurableLogger(self._base_logger, self._log_scope)
            object.__setattr__(self, "_logger", logger)  # a cache: frozen for users
        return logger


def recorded_failure(error: ErrorObject | None) -> Exception:
    """The exception a failed step raises, identical on first run and on replay."""
    return rebuild_failure(StepError, error)


async def replayed_result(payload: str | None, operation_id: str) -> Any:
    """What a step recorded as succeeded returns on replay (default encoding, no plugins)."""
    return None if payload is None else deserialize_default(payload, operation_id)


async def run_step(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    recorded: Operation | None,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    config: StepConfig,
    logger_fields: dict[str, object],
) -> Any:
    """Replay or execute one step, attempt after attempt."""
    attempts_made = 0
    needs_start = True
    plugins = rt.plugins
    is_replayed = recorded is not None
    if recorded is not None:
        details = recorded.step_details
        attempts_made = details.attempt if details else 0
        status = recorded.status
        if status is OperationStatus.SUCCEEDED:
            payload = details.result if details else None
            if payload is None:
                return None
            if config.serdes is None:
                return deserialize_default(payload, identity.id)
            return await deserialize(config.serdes, payload, SerDesContext(identity.id, rt.arn))
        if status is OperationStatus.FAILED:
            raise recorded_failure(details.error if details else None)
        if status is OperationStatus.PENDING:
            await until_ready(rt, identity)
        elif status is OperationStatus.STARTED:
            if config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
                attempts_made += 1
                interrupted = StepInterruptedError(
                    f"step {identity.name or identity.id} was interrupted during attempt "
                    f"{attempts_made} and is at most once per retry, so it was not re-run"
                )
                fields = _fields(logger_fields, identity, attempts_made)
                await _after_failure(rt, identity, config, interrupted, attempts_made, fields)
            else:
                needs_start = False
        elif status is not OperationStatus.READY:
            raise StepError(
                f"step {identity.name or identity.id} ended as {status}",
                error_type=f"Step.{status}",
            )

    while True:
        attempt = attempts_made + 1
        if needs_start:
            if config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
                await rt.batcher.commit(update(identity, OperationAction.START))
            else:
                rt.batcher.enqueue(update(identity, OperationAction.START), defer=True)
        needs_start = True
        if plugins is not None:
            from durable_async._plugin_types import OperationStartInfo, UserFunctionStartInfo

            await plugins.operation_event(
                "on_operation_start",
                OperationStartInfo,
                identity,
                OperationStatus.STARTED,
                is_replayed=is_replayed,
                attempt=attempt,
            )
            await plugins.operation_event(
                "on_user_function_start",
                UserFunctionStartInfo,
                identity,
                OperationStatus.STARTED,
                is_replayed=is_replayed,
                attempt=attempt,
            )

        fields = _fields(logger_fields, identity, attempt)
        scope = LogScope(fields)
        step_context = StepContext(attempt, identity.id, identity.name, scope, rt.logger)
        body = RunningBody(getattr(func, "__name__", None) or repr(func))
        reset = current_log_scope.set(scope)
        failure: Exception | None = None
        try:
            result = await call_user(rt, func, step_context, *args, body=body)
        except Exception as error:
            failure = error
        except BaseException:
            if plugins is not None:
                await _attempt_end(plugins, identity, attempt, is_replayed, None, cancelled=True)
            raise
        finally:
            current_log_scope.reset(reset)
        if body.misuse is not None:
            # A programming error no retry can fix, even if the body caught it.
            failure = body.misuse
        if plugins is not None:
            await _attempt_end(plugins, identity, attempt, is_replayed, failure)
            is_replayed = True
        if failure is None:
            # The attempt's objects go before the wait for its result to be recorded:
            # every branch of a large map can be waiting there at once.
            del fields, scope, step_context, body, reset, func, args
            payload, result = await _encoded_result(rt, identity, config, result, attempt)
            # Awaited here, not in a helper coroutine: one frame fewer per waiting branch.
            succeed = update(identity, OperationAction.SUCCEED, payload=payload)
            if _pipelined(rt, config):
                await rt.batcher.pipeline(succeed)
            else:
                await rt.batcher.commit(succeed)
            await _operation_end(rt, identity, attempt)
            return result
        await _after_failure(
            rt, identity, config, failure, attempt, fields, retry=body.misuse is None
        )
        attempts_made = attempt


def _fields(
    logger_fields: dict[str, object], identity: OperationIdentity, attempt: int
) -> dict[str, object]:
    """The durable log fields of one attempt of a step."""
    fields = {**logger_fields, "operationId": identity.id, "attempt": attempt}
    if identity.name:
        fields["operationName"] = identity.name
    return fields


async def _attempt_end(
    plugins: PluginDispatcher,
    identity: OperationIdentity,
    attempt: int,
    is_replayed: bool,
    failure: Exception | None,
    *,
    cancelled: bool = False,
) -> None:
    from durable_async._plugin_types import UserFunctionEndInfo, UserFunctionOutcome

    if cancelled:
        outcome, error = UserFunctionOutcome.INCOMPLETE, None
    elif failure is None:
        outcome, error = UserFunctionOutcome.SUCCEEDED, None
    else:
        outcome, error = UserFunctionOutcome.FAILED, error_object(failure)
    await plugins.operation_event(
        "on_user_function_end",
        UserFunctionEndInfo,
        identity,
        OperationStatus.STARTED,
        is_replayed=is_replayed,
        attempt=attempt,
        outcome=outcome,
        error=error,
    )


async def _operation_end(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    attempt: int,
    error: ErrorObject | None = None,
) -> None:
    """Report a terminal status this invocation just checkpointed (with its attempt)."""
    status = OperationStatus.SUCCEEDED if error is None else OperationStatus.FAILED
    await report_end(rt, identity, status, error, attempt=attempt)


async def _encoded_result(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    config: StepConfig,
    result: Any,
    attempt: int,
) -> tuple[str | None, Any]:
    """A step's result as recorded, and what replay will return; the failure if it cannot be.

    A result that cannot be serialized, or is too large, fails the step (no retry).
    """
    serdes_context = SerDesContext(identity.id, rt.arn)
    try:
        payload = await serialize(config.serdes, result, serdes_context)
        check_payload_size(f"the result of step {identity.name or identity.id}", payload)
        if payload is not None and not (config.serdes is None and type(result) in _PLAIN):
            # Return what replay will return, so first run and replay agree.
            result = await deserialize(config.serdes, payload, serdes_context)
        elif payload is None:
            result = None
    except (SerDesError, PayloadTooLargeError) as error:
        recorded = error_object(error)
        await rt.batcher.commit(update(identity, OperationAction.FAIL, error=recorded))
        await _operation_end(rt, identity, attempt, recorded)
        raise SerDesError(str(error)) from error
    return payload, result


def _pipelined(rt: InvocationRuntime, config: StepConfig) -> bool:
    """Whether the step's SUCCEED goes on without waiting (never for at-most-once steps)."""
    if config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
        return False
    return rt.pipelined if config.pipelined is None else config.pipelined


async def _after_failure(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    config: StepConfig,
    error: Exception,
    attempt: int,
    fields: dict[str, object],
    *,
    retry: bool = True,
) -> None:
    """Checkpoint a retry and return when it is due, or checkpoint the failure and raise it.

    A retry that falls due while the invocation still runs (a checkpoint response shows
    the step ``READY``) is run in this invocation; otherwise the invocation suspends.
    Both are logged (see ``_failure_log``) before they are checkpointed, so the log says
    why even if the checkpoint fails.
    """
    recorded = error_object(error)
    if isinstance(error, StepInterruptedError):
        recorded = attrs.evolve(recorded, type=STEP_INTERRUPTED_TYPE)
    strategy = config.retry_strategy or _default_retry()
    decision = strategy(error, attempt) if retry else None
    if decision is not None and decision.should_retry:
        delay = max(1, decision.delay_seconds)
        attempt_failed("step", identity.name, identity.id, fields, error, attempt, delay)
        await rt.batcher.commit(
            update(
                identity,
                OperationAction.RETRY,
                error=recorded,
                step_options=StepOptions(next_attempt_delay_seconds=delay),
            )
        )
        await until_ready(rt, identity)
        return
    operation_failed("step", identity.name, identity.id, fields, error, attempt)
    await rt.batcher.commit(update(identity, OperationAction.FAIL, error=recorded))
    await _operation_end(rt, identity, attempt, recorded)
    failure = recorded_failure(recorded)
    if failure.__cause__ is not None:
        failure.__cause__.__context__ = error
    raise failure
