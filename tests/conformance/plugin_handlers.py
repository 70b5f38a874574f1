"""Conformance suite ``plugin`` (10-x): instrumentation plugins, ported from AWS's reference.

Each handler mirrors the AWS reference handler of the same name
(``handlers/plugin/<name>.py`` of aws-durable-execution-sdk-python's conformance tests):
the plugin prints one JSON record per hook to plain stdout, stamped with the execution ARN
its invocation-start hook received.
"""

from __future__ import annotations

import json
from typing import Any

from durable_async import (
    DurableContext,
    DurableInstrumentationPlugin,
    Duration,
    InvocationEndInfo,
    InvocationStartInfo,
    OperationEndInfo,
    OperationInfo,
    OperationStartInfo,
    OperationType,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
    create_retry_strategy,
    durable_execution,
)


def _emit(record: dict[str, Any], execution_arn: str | None) -> None:
    if execution_arn:
        record = {"durableExecutionArn": execution_arn, **record}
    print(json.dumps(record), flush=True)


def _is_step(info: OperationInfo) -> bool:
    return info.operation_type is OperationType.STEP


async def greet(step: StepContext, name: str) -> str:
    return f"Hello, {name}!"


class _ArnPlugin(DurableInstrumentationPlugin):
    """Captures the execution ARN for hooks whose info does not carry it."""

    def __init__(self) -> None:
        self.arn: str | None = None

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.execution_arn


class LifecyclePlugin(DurableInstrumentationPlugin):
    """Invocation start (with the first-invocation flag) and end (with the status)."""

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        record = {"plugin": "CONFPLUGIN", "hook": "invocation-start"}
        _emit({**record, "first": info.is_first_invocation}, info.execution_arn)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        record = {"plugin": "CONFPLUGIN", "hook": "invocation-end", "status": info.status.name}
        _emit(record, info.execution_arn)


async def greet_logged(step: StepContext, name: str) -> str:
    step.logger.info(f"Greeting step running for: {name}")
    return f"Hello, {name}!"


@durable_execution(plugins=[LifecyclePlugin()])
async def plugin_invocation_lifecycle(event: str, ctx: DurableContext) -> str:
    """10-1: invocation start and end around a single-step execution."""
    return await ctx.step(greet_logged, event)


class OperationLifecyclePlugin(_ArnPlugin):
    def on_operation_start(self, info: OperationStartInfo) -> None:
        if _is_step(info):
            record = {"plugin": "CONFPLUGIN", "hook": "operation-start", "op": info.operation_id}
            _emit(record, self.arn)

    def on_operation_end(self, info: OperationEndInfo) -> None:
        if _is_step(info):
            record = {"plugin": "CONFPLUGIN", "hook": "operation-end", "op": info.operation_id}
            _emit({**record, "status": info.status.name}, self.arn)


@durable_execution(plugins=[OperationLifecyclePlugin()])
async def plugin_operation_lifecycle(event: str, ctx: DurableContext) -> str:
    """10-2: operation start and terminal end of a step."""
    return await ctx.step(greet, event)


class AttemptPlugin(_ArnPlugin):
    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if _is_step(info):
            record = {"plugin": "CONFPLUGIN", "hook": "attempt-start", "n": info.attempt}
            _emit({**record, "op": info.operation_id}, self.arn)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if _is_step(info):
            record = {"plugin": "CONFPLUGIN", "hook": "attempt-end", "n": info.attempt}
            _emit({**record, "outcome": info.outcome.name, "op": info.operation_id}, self.arn)


async def unreliable_operation(step: StepContext) -> str:
    if step.attempt < 2:
        msg = f"Attempt {step.attempt} failed"
        raise RuntimeError(msg)
    return "Operation succeeded"


@durable_execution(plugins=[AttemptPlugin()])
async def plugin_attempt_hooks_retry(event: Any, ctx: DurableContext) -> str:
    """10-3: attempt hooks per step attempt, failing once then succeeding."""
    retry = RetryStrategyConfig(
        max_attempts=3, initial_delay=Duration.from_seconds(1), retryable_error_types=[RuntimeError]
    )
    config = StepConfig(retry_strategy=create_retry_strategy(retry))
    return await ctx.step(unreliable_operation, config=config)


class FaultyPlugin(DurableInstrumentationPlugin):
    """Every hook logs its line, then raises (the async ones too)."""

    def __init__(self) -> None:
        self.arn: str | None = None

    def _fail(self, hook: str) -> None:
        _emit({"plugin": "CONFPLUGIN-FAULTY", "hook": hook}, self.arn)
        raise RuntimeError(f"faulty {hook}")

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.execution_arn
        self._fail("invocation-start")

    async def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self._fail("invocation-end")

    def on_operation_start(self, info: OperationStartInfo) -> None:
        if _is_step(info):
            self._fail("operation-start")

    async def on_operation_end(self, info: OperationEndInfo) -> None:
        if _is_step(info):
            self._fail("operation-end")

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if _is_step(info):
            self._fail("attempt-start")

    async def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if _is_step(info):
            self._fail("attempt-end")


@durable_execution(plugins=[FaultyPlugin()])
async def plugin_error_isolation(event: str, ctx: DurableContext) -> str:
    """10-4: plugin exceptions never change the outcome."""
    return await ctx.step(greet, event)


class _NamedPlugin(DurableInstrumentationPlugin):
    def __init__(self, label: str) -> None:
        self.label = label

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        _emit({"plugin": self.label, "hook": "invocation-start"}, info.execution_arn)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        record = {"plugin": self.label, "hook": "invocation-end", "status": info.status.name}
        _emit(record, info.execution_arn)


class PluginA(_NamedPlugin):
    def __init__(self) -> None:
        super().__init__("CONFPLUGIN-A")


class PluginB(_NamedPlugin):
    def __init__(self) -> None:
        super().__init__("CONFPLUGIN-B")


@durable_execution(plugins=[PluginA(), PluginB()])
async def plugin_multiple_plugins(event: str, ctx: DurableContext) -> str:
    """10-5: two plugins, both see both invocation hooks."""
    return await ctx.step(greet, event)


@durable_execution(plugins=[LifecyclePlugin()])
async def plugin_first_invocation_flag(event: Any, ctx: DurableContext) -> str:
    """10-6: first=true, then first=false on the invocation after the wait."""
    await ctx.wait(Duration.from_seconds(2))
    return "Wait completed"


async def failing_step(step: StepContext) -> str:
    msg = "Something went wrong"
    raise RuntimeError(msg)


@durable_execution(plugins=[LifecyclePlugin()])
async def plugin_terminal_failure(event: Any, ctx: DurableContext) -> str:
    """10-7: invocation end reports FAILED."""
    return await ctx.step(failing_step, config=StepConfig(retry_strategy=RetryPresets.none()))
