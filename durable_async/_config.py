"""Per-operation configuration objects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import attrs

from durable_async._duration import Duration, name_invalid_fields, to_duration
from durable_async._errors import ValidationError
from durable_async._serdes import SerDes
from durable_async._validation import validate_sub_type

if TYPE_CHECKING:
    # Imported where used: a handler that only runs steps never loads them.
    from durable_async._completion import CompletionConfig
    from durable_async._retry import RetryStrategy


class StepSemantics(StrEnum):
    """How often one attempt of a step may run."""

    #: START is checkpointed in the background; a crash mid-attempt re-runs the attempt.
    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"
    #: START is persisted before the body runs; a crash mid-attempt is never re-run: the
    #: attempt fails as interrupted and the retry strategy decides what happens next.
    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"


def _check_sub_type(_: object, __: object, value: str | None) -> None:
    validate_sub_type(value)


def _check_pipelined(instance: StepConfig, _: object, value: bool | None) -> None:
    if value is not None and not isinstance(value, bool):
        msg = f"pipelined must be True, False or None, got: {value!r}"
        raise ValidationError(msg)
    if value and instance.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
        msg = (
            "pipelined=True is for at-least-once steps: an at-most-once step's outcome must "
            "be recorded before the workflow goes on"
        )
        raise ValidationError(msg)


@attrs.frozen
class StepConfig:
    """How a step retries, how often an attempt may run, and how its result is stored.

    ``pipelined``: whether the workflow goes on before the step's result is recorded
    (``None``: as the handler says, see ``durable_execution(pipelined=...)``).
    """

    retry_strategy: RetryStrategy | None = None
    step_semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    serdes: SerDes[Any] | None = None
    sub_type: str | None = attrs.field(default=None, validator=_check_sub_type, kw_only=True)
    pipelined: bool | None = attrs.field(default=None, validator=_check_pipelined, kw_only=True)


def _timeout_seconds(value: Duration | timedelta | float | None) -> int:
    """Whole seconds of a callback timeout; ``None`` or ``0`` means no timeout.

    Takes what ``ctx.wait`` takes (a ``Duration``, a ``timedelta`` or seconds; fractions
    round up) and rejects the same bad values, when the config is constructed.
    """
    if value is None:
        return 0
    return to_duration(value).seconds


@attrs.frozen
class ChildConfig:
    """How a child context's result is stored.

    ``summary_generator`` produces what is stored instead of a result too large to
    checkpoint (the body then re-runs on replay to rebuild the real result).
    """

    serdes: SerDes[Any] | None = None
    sub_type: str | None = attrs.field(default=None, validator=_check_sub_type, kw_only=True)
    summary_generator: Callable[[Any], str] | None = attrs.field(default=None, kw_only=True)


@attrs.frozen(field_transformer=name_invalid_fields)
class CallbackConfig:
    """Timeouts and result decoding of a callback.

    The timeouts take a ``Duration``, a ``timedelta`` or seconds (fractions round up) and
    are stored as whole seconds; ``0`` or ``None`` means no timeout.
    """

    timeout: int = attrs.field(default=0, converter=_timeout_seconds)
    heartbeat_timeout: int = attrs.field(default=0, converter=_timeout_seconds)
    #: Decodes the success payload; by default the raw string is returned, as AWS does.
    serdes: SerDes[Any] | None = None
    sub_type: str | None = attrs.field(default=None, validator=_check_sub_type, kw_only=True)


@attrs.frozen(field_transformer=name_invalid_fields)
class WaitForCallbackConfig:
    """A callback's options plus how the submitter step retries.

    The timeouts take what ``CallbackConfig``'s take.
    """

    timeout: int = attrs.field(default=0, converter=_timeout_seconds)
    heartbeat_timeout: int = attrs.field(default=0, converter=_timeout_seconds)
    serdes: SerDes[Any] | None = None
    retry_strategy: RetryStrategy | None = None

    def callback_config(self) -> CallbackConfig:
        """The options of the inner callback."""
        return CallbackConfig(self.timeout, self.heartbeat_timeout, self.serdes)


@attrs.frozen
class InvokeConfig:
    """Encoding of a chained invocation's payload and result, and its tenant."""

    #: Encodes the payload; default plain JSON (what the target receives as its event).
    serdes_payload: SerDes[Any] | None = None
    #: Decodes the target's result; default plain JSON.
    serdes_result: SerDes[Any] | None = None
    tenant_id: str | None = None


class NestingType(StrEnum):
    """How a batch's branches are recorded.

    ``NESTED``: each branch is a child context of its own (a CONTEXT operation).
    ``FLAT``: no operation per branch; its operations hang directly under the batch.
    """

    NESTED = "NESTED"
    FLAT = "FLAT"


def _check_max_concurrency(_: object, __: object, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        msg = f"max_concurrency must be at least 1, got: {value!r}"
        raise ValidationError(msg)


def _any_failure_ends_it() -> CompletionConfig:
    """``MapConfig``'s default policy; the policy module loads only once a map is configured."""
    from durable_async._completion import CompletionConfig

    return CompletionConfig()


def _all_must_succeed() -> CompletionConfig:
    """``ParallelConfig``'s default policy (see ``_any_failure_ends_it``)."""
    from durable_async._completion import CompletionConfig

    return CompletionConfig.all_successful()


@attrs.frozen
class MapConfig:
    """How ``ctx.map`` runs its items.

    ``max_concurrency`` bounds the branches in flight (a suspended branch keeps its slot);
    ``completion_config`` decides when the batch ends (default: at the first failure);
    ``item_namer(item, index)`` names each branch (default ``map-item-{index}``);
    ``item_serdes`` stores each branch's result (default: ``serdes``, then the default
    encoding); ``serdes`` stores the ``BatchResult``; ``summary_generator(result)`` adds a
    ``summary`` to what is stored when the result is too large to store.
    """

    max_concurrency: int | None = attrs.field(default=None, validator=_check_max_concurrency)
    completion_config: CompletionConfig = attrs.field(factory=_any_failure_ends_it)
    item_namer: Callable[[Any, int], str] | None = None
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting: NestingType = NestingType.NESTED


@attrs.frozen
class ParallelConfig:
    """How ``ctx.parallel`` runs its branches (see ``MapConfig``; default: all must succeed)."""

    max_concurrency: int | None = attrs.field(default=None, validator=_check_max_concurrency)
    completion_config: CompletionConfig = attrs.field(factory=_all_must_succeed)
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting: NestingType = NestingType.NESTED


@attrs.frozen
class ParallelBranch:
    """A branch of ``ctx.parallel`` with a name of its own (default ``parallel-branch-{i}``)."""

    func: Callable[..., Awaitable[Any]]
    name: str | None = None
