"""OpenTelemetry tracing for durable executions: install the ``otel`` extra to use it.

``OpenTelemetryPlugin`` emits one span per invocation and, as its child, one span per
step attempt (from the start to the end of one run of the step body or condition check;
a child context's body gets none, its steps have theirs). Operations replayed
from checkpoints produce no span: replay never runs a body, so no attempt hook fires. A
retried step gets a span per attempt, each in the invocation that ran it.

The plugin is a *factory* (``create_plugin``): each invocation gets its own tracer object
holding that invocation's span, so invocations running concurrently on one loop (a
``ctx.invoke`` target under ``LocalRunner``) never share state. Attempt spans are parented
explicitly (``set_span_in_context``) rather than through the implicit current span,
because hooks of concurrently running steps interleave on the loop.

It uses ``opentelemetry-api`` only; the application configures the SDK/exporter (or
passes a ``tracer_provider``). The package root never imports this module, so neither it
nor OpenTelemetry costs anything at cold start unless registered. ``opentelemetry-api``
ships type information (``py.typed``), so mypy checks this module strictly without an
override. A failure in here is logged on ``durable_async.otel`` and never reaches the SDK.

Attributes: the invocation span has ``durable.execution_arn``, ``faas.invocation_id`` (the
Lambda request id), ``durable.first_invocation`` and, at its end, ``durable.status``; an
``ERROR`` status when the invocation failed or raised. An attempt span (named after the
step, or its operation id) has ``durable.operation.id``, ``.type``, ``.sub_type``,
``.name``, ``.parent_id``, ``.attempt`` and, at its end, ``durable.operation.outcome``; a
failed attempt gets an ``exception`` event and an ``ERROR`` status.

A wait, callback or chained invoke runs no body, so it has no span; its end, which another
party makes (a timer, an external system, the target function), is a
``durable.operation.ended`` event on the span of the invocation that learns of it, with
the operation's attributes and ``durable.operation.status``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from durable_async._plugin_types import (
        InvocationEndInfo,
        InvocationStartInfo,
        OperationEndInfo,
        OperationInfo,
        UserFunctionEndInfo,
        UserFunctionStartInfo,
    )
    from durable_async._wire.models import ErrorObject

_logger = logging.getLogger("durable_async.otel")

INVOCATION_SPAN_NAME = "durable invocation"
#: The span event recording the end of an operation another party ended.
OPERATION_ENDED_EVENT = "durable.operation.ended"
_FAILED_INVOCATION = frozenset({"FAILED", "RETRY"})
#: Operations whose body runs get a span per run (a child context's body does not).
_ATTEMPT_SPANS = frozenset({"STEP"})
#: Operations that run no body: another party ends them.
_ENDED_OUTSIDE = frozenset({"WAIT", "CALLBACK", "CHAINED_INVOKE"})


class OpenTelemetryPlugin:
    """Traces invocations and step attempts; register it with ``durable_execution(plugins=)``.

    ``tracer_provider`` defaults to OpenTelemetry's global provider (looked up lazily, so
    one configured after this plugin is created is still used).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("durable_async", tracer_provider=tracer_provider)

    def create_plugin(self, info: InvocationStartInfo, /) -> _InvocationTracer:
        """The hooks observing one invocation (called by the SDK once per invocation)."""
        return _InvocationTracer(self._tracer)


class _InvocationTracer:
    """One invocation's span and its open attempt spans, keyed by (operation id, attempt)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._span: Span | None = None
        self._attempts: dict[tuple[str, int | None], Span] = {}

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        try:
            attributes: dict[str, AttributeValue] = {
                "durable.execution_arn": info.execution_arn,
                "durable.first_invocation": info.is_first_invocation,
            }
            if info.request_id is not None:
                attributes["faas.invocation_id"] = info.request_id
            # Started in the caller's context: a span of Lambda's own instrumentation,
            # when there is one, becomes its parent.
            self._span = self._tracer.start_span(INVOCATION_SPAN_NAME, attributes=attributes)
        except Exception:
            _logger.exception("cannot start the invocation span")

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        try:
            for attempt in self._attempts.values():  # none are left open normally
                attempt.set_attribute("durable.operation.outcome", "INCOMPLETE")
                attempt.end()
            self._attempts.clear()
            span = self._span
            if span is None:
                return
            self._span = None
            span.set_attribute("durable.status", str(info.status))
            if str(info.status) in _FAILED_INVOCATION:
                _record_error(span, info.error, f"invocation {info.status}")
            span.end()
        except Exception:
            _logger.exception("cannot end the invocation span")

    def on_operation_end(self, info: OperationEndInfo) -> None:
        try:
            span = self._span
            if span is None or str(info.operation_type) not in _ENDED_OUTSIDE:
                return
            attributes = _operation_attributes(info)
            attributes["durable.operation.status"] = str(info.status)
            span.add_event(OPERATION_ENDED_EVENT, attributes)
        except Exception:
            _logger.exception("cannot record the end of operation %s", info.operation_id)

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if str(info.operation_type) not in _ATTEMPT_SPANS:
            return  # a child context's body: its steps have their spans
        try:
            context = trace.set_span_in_context(self._span) if self._span is not None else None
            span = self._tracer.start_span(
                info.name or info.operation_id,
                context=context,
                attributes=_operation_attributes(info),
            )
            stale = self._attempts.pop((info.operation_id, info.attempt), None)
            if stale is not None:
                stale.end()
            self._attempts[info.operation_id, info.attempt] = span
        except Exception:
            _logger.exception("cannot start the span of step %s", info.operation_id)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        try:
            span = self._attempts.pop((info.operation_id, info.attempt), None)
            if span is None:
                return
            span.set_attribute("durable.operation.outcome", str(info.outcome))
            if str(info.outcome) == "FAILED":
                _record_error(span, info.error, "step attempt failed")
            span.end()
        except Exception:
            _logger.exception("cannot end the span of step %s", info.operation_id)


def _operation_attributes(info: OperationInfo) -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue | None] = {
        "durable.operation.id": info.operation_id,
        "durable.operation.type": str(info.operation_type),
        "durable.operation.sub_type": info.sub_type,
        "durable.operation.name": info.name,
        "durable.operation.parent_id": info.parent_id,
        "durable.operation.attempt": info.attempt,
    }
    return {key: value for key, value in values.items() if value is not None}


def _record_error(span: Span, error: ErrorObject | None, fallback: str) -> None:
    """An ``exception`` event (semantic-convention names) and an ERROR status."""
    if error is not None:
        attributes: dict[str, AttributeValue] = {}
        if error.type:
            attributes["exception.type"] = error.type
        if error.message:
            attributes["exception.message"] = error.message
        if error.stack_trace:
            attributes["exception.stacktrace"] = "\n".join(error.stack_trace)
        span.add_event("exception", attributes)
    message = (error.message or error.type) if error is not None else None
    span.set_status(Status(StatusCode.ERROR, message or fallback))


__all__ = ["INVOCATION_SPAN_NAME", "OPERATION_ENDED_EVENT", "OpenTelemetryPlugin"]
