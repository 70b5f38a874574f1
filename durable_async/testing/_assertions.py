"""History assertions whose failure messages show the execution's tree.

A bare ``assert result.status == "SUCCEEDED"`` says only that it was FAILED; these say
which operation failed and show the whole history, which is what one reads next anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from durable_async._wire.enums import InvocationStatus, OperationStatus
from durable_async.testing._history import History, HistoryOperation
from durable_async.testing._runner import ExecutionResult


def assert_succeeded(result: ExecutionResult) -> None:
    """The execution succeeded; otherwise fail with its error and history."""
    if result.status is not InvocationStatus.SUCCEEDED:
        raise AssertionError(f"expected the execution to succeed, but it ended {result}")


def assert_failed(result: ExecutionResult, error_type: str | None = None) -> None:
    """The execution failed (with ``error_type``, if given: a suffix of the recorded type)."""
    if result.status is not InvocationStatus.FAILED:
        raise AssertionError(f"expected the execution to fail, but it ended {result}")
    recorded = result.error.type if result.error else None
    if error_type is not None and not (recorded or "").endswith(error_type):
        raise AssertionError(f"expected a {error_type} failure, but it ended {result}")


def assert_operation(
    history: History,
    name: str,
    *,
    status: OperationStatus | str | None = None,
    attempts: int | None = None,
) -> HistoryOperation:
    """The operation called ``name`` exists (with that status and attempt count); it."""
    try:
        node = history.get(name)
    except KeyError as error:
        raise AssertionError(f"{error.args[0]}\n{history}") from None
    if status is not None and node.status != status:
        raise AssertionError(f"{name!r} is {node.status.value}, expected {status}\n{history}")
    if attempts is not None and node.attempts != attempts:
        raise AssertionError(
            f"{name!r} made {node.attempts} attempt(s), expected {attempts}\n{history}"
        )
    return node


def assert_operation_names(history: History, expected: Sequence[str | None]) -> None:
    """The operations' names, in ``iter(history)`` order, are ``expected``."""
    names = [node.name for node in history]
    if names != list(expected):
        raise AssertionError(f"operation names {names} != expected {list(expected)}\n{history}")
