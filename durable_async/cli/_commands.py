"""The local commands: ``run``, ``history``, ``callback``, ``list``, ``show``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from durable_async._wire.enums import InvocationStatus, OperationStatus
from durable_async._wire.models import ErrorObject
from durable_async.testing._clock import RealClock, VirtualClock
from durable_async.testing._history import History, HistoryFormatError, HistoryOperation
from durable_async.testing._memory import CallbackEndedError
from durable_async.testing._runner import ExecutionResult, LocalRunner
from durable_async.testing._sqlite import SqliteBackend, StoreError


class CliError(Exception):
    """A mistake in what the command was asked (exit status 2)."""


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command."""
    from durable_async.cli._target import TargetError

    _show_logs()
    try:
        if getattr(args, "aws", False):
            from durable_async.cli._aws import dispatch_aws

            status: int = asyncio.run(dispatch_aws(args))
            return status
        command = {
            "run": _run,
            "history": _history,
            "callback": _callback,
            "list": _list,
            "show": _show,
            "replay": _replay,
        }[args.command]
        return command(args)
    except (TargetError, StoreError, HistoryFormatError) as error:
        raise CliError(str(error)) from error


def _show_logs() -> None:
    """``ctx.logger`` records reach the terminal with no setup of the user's own."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        for noisy in ("botocore", "aiobotocore", "urllib3", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _json_arg(raw: str | None, what: str) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        msg = f"{what} is not JSON ({error}): {raw!r}"
        raise CliError(msg) from error


# -- run --------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from durable_async.cli._target import load_target

    input_value = _json_arg(args.input, "--input")
    handler, functions, target = load_target(args.target)
    clock = RealClock() if args.real_time else VirtualClock()
    with SqliteBackend(args.store, clock=clock) as store:
        runner = LocalRunner(handler, store, functions=functions, pause_on_callbacks=True)
        arn = runner.start(input_value)
        store.targets[arn] = target
        store.save(arn)
        try:
            result = asyncio.run(runner.resume(arn))
        finally:
            store.save_all()  # the invocation records too, for `show` and later resumes
        return _report(result, store, json_output=args.json)


def _report(result: ExecutionResult, store: SqliteBackend | None, *, json_output: bool) -> int:
    out = sys.stdout
    if json_output:
        data: dict[str, Any] = {"Status": result.status.value, "Result": result.result}
        if result.error is not None:
            data["Error"] = _error_json(result.error)
        data.update(result.history.to_json())
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        out.write(f"{result}\n")
    if result.status is InvocationStatus.FAILED:
        _explain_failure(result.history, result.error, sys.stderr)
        return 1
    if result.status is InvocationStatus.PENDING:
        _explain_pending(result, store, sys.stderr if json_output else out)
    return 0


def _error_json(error: ErrorObject) -> dict[str, Any]:
    from durable_async._wire.converter import to_wire

    data: dict[str, Any] = to_wire(error)
    return data


def _explain_pending(result: ExecutionResult, store: SqliteBackend | None, out: TextIO) -> None:
    if not result.open_callbacks:
        out.write(f"execution {result.arn} is waiting (nothing the local runner can move)\n")
        return
    where = "" if store is None else _store_flag(store)
    for callback_id in result.open_callbacks:
        out.write(
            f"waiting on callback {callback_id}; answer it with:\n"
            f"  durable-async callback succeed {callback_id} '<JSON result>'{where}\n"
            f"  durable-async callback fail {callback_id} '<message>'{where}\n"
        )


def _store_flag(store: SqliteBackend) -> str:
    from durable_async.testing._sqlite import DEFAULT_STORE

    if store.path == Path(DEFAULT_STORE):
        return ""
    return f" --store {store.path}"


def _explain_failure(history: History, error: ErrorObject | None, out: TextIO) -> None:
    """The operation that failed, and the user's frames of its stack trace."""
    failed = _failing_operation(history)
    shown = error
    if failed is not None:
        out.write(f"failed at {failed.type.value} {failed.name or failed.id}")
        out.write(f" after {failed.attempts} attempt(s)\n" if failed.attempts else "\n")
        shown = failed.error or error
    if shown is not None:
        out.writelines(f"{line}\n" for line in _traceback_lines(shown))


_TRACEBACK_HEADER = "Traceback (most recent call last):"


def _traceback_lines(error: ErrorObject) -> list[str]:
    """``error`` as Python prints an exception: its user frames, then ``type: message``.

    A stack trace recorded by durable_async is already that: the header, the frames and
    the exception line(s), chained exceptions included (its start may have been cut off to
    fit the service's limit). AWS's Python SDK records frame strings alone (one entry a
    frame, with embedded newlines); its JavaScript SDK, ``error.stack`` split into lines
    (``Error: message`` first, then ``    at ...`` lines). Whatever the shape, the SDK's
    frames are left out, each run of Python frames that is left gets one header, and
    ``type: message`` is added if the trace holds no exception line: each appears once.
    """
    recorded = [line for entry in error.stack_trace or () for line in entry.splitlines()]
    lines: list[str] = []
    for line in _without_sdk_frames(recorded):
        if line == _TRACEBACK_HEADER:
            continue  # put back before each run of frames that is left, and only there
        if _is_frame_line(line) and not (lines and lines[-1].startswith("  ")):
            lines.append(_TRACEBACK_HEADER)
        lines.append(line)
    if not any(_is_exception_line(line) for line in lines):
        lines.append(f"{error.type or 'Error'}: {error.message or ''}")
    return lines


def _is_exception_line(line: str) -> bool:
    """Whether ``line`` is none of a header, a frame or a frame's source: the exception."""
    return bool(line.strip()) and line != _TRACEBACK_HEADER and not line.startswith("  ")


def _is_frame_line(line: str) -> bool:
    return line.startswith('  File "')


def _without_sdk_frames(lines: list[str]) -> list[str]:
    """``lines`` less the SDK's frames: each ``File`` line with the source lines under it."""
    kept: list[str] = []
    dropping = False
    for line in lines:
        if _is_frame_line(line):
            dropping = _is_sdk_frame(line)
        elif not line.startswith("    "):
            dropping = False  # a header, an exception line: not part of a frame
        if not dropping:
            kept.append(line)
    return kept


def _failing_operation(history: History) -> HistoryOperation | None:
    """The innermost failed operation: what went wrong, not the contexts around it."""
    failed = [
        node
        for node in history
        if node.status in (OperationStatus.FAILED, OperationStatus.TIMED_OUT)
    ]
    for node in reversed(failed):
        if not node.children:
            return node
    return failed[-1] if failed else None


def _is_sdk_frame(line: str) -> bool:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return package in line or f"{os.sep}asyncio{os.sep}" in line or f"{os.sep}anyio{os.sep}" in line


# -- history, list, show ------------------------------------------------------------------


def _history(args: argparse.Namespace) -> int:
    history = load_history_file(args.file)
    sys.stdout.write(f"{history}\n")
    return 0


def load_history_file(file: str) -> History:
    """A ``History`` from a saved JSON file of any of the shapes it reads."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as error:
        msg = f"cannot read {file}: {error.strerror}"
        raise CliError(msg) from error
    return History.from_json(_json_arg(text, file))


def _list(args: argparse.Namespace) -> int:
    with SqliteBackend(args.store) as store:
        rows = list(store.rows())
    if not rows:
        sys.stdout.write(f"no executions in {args.store}\n")
        return 0
    for row in rows:
        sys.stdout.write(
            f"{row.status:<9}  {row.started.isoformat(timespec='seconds')}  "
            f"{row.target or '?'}  {row.arn}\n"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    with SqliteBackend(args.store) as store:
        arn = store.find(args.execution)
        execution = store.load(arn)
        history = History(
            tuple(execution.operations.values()),
            store.invocation_records.get(arn, ()),
            arn=arn,
        )
    if args.json:
        json.dump(history.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{arn}\n{history}\n")
    return 0


# -- callback -----------------------------------------------------------------------------


def _callback(args: argparse.Namespace) -> int:
    from durable_async.cli._target import load_target

    with SqliteBackend(args.store) as store:
        arn = store.arn_for_callback(args.callback_id)  # StoreError: one line, no ID
        store.load(arn)
        try:
            if args.action == "succeed":
                store.complete_callback(args.callback_id, args.payload)
            elif args.action == "fail":
                store.fail_callback(args.callback_id, failure(args.payload, args.error_type))
            else:
                store.heartbeat_callback(args.callback_id)
        except CallbackEndedError as error:  # the service answers it with 404
            raise CliError(str(error)) from None
        if args.action == "heartbeat":
            sys.stdout.write(f"heartbeat recorded for callback {args.callback_id}\n")
            return 0
        root = _root_of(store, arn)
        target = store.targets.get(root)
        if target is None:
            msg = f"execution {root} has no stored handler to resume"
            raise CliError(msg)
        handler, functions, _ = load_target(target)
        if isinstance(store.clock, VirtualClock) and _was_real_time(store, root):
            store.clock = RealClock()
        runner = LocalRunner(handler, store, functions=functions, pause_on_callbacks=True)
        try:
            result = asyncio.run(runner.resume(root))
        finally:
            store.save_all()
        return _report(result, store, json_output=False)


def failure(payload: str | None, error_type: str | None) -> ErrorObject:
    """The error a ``callback fail`` sends: an ErrorObject JSON, or a plain message."""
    from durable_async._wire.converter import from_wire

    if payload is not None and payload.lstrip().startswith("{"):
        data = _json_arg(payload, "the failure")
        if isinstance(data, dict) and {"ErrorMessage", "ErrorType"} & data.keys():
            error = from_wire(data, ErrorObject)
            return (
                error
                if error_type is None
                else ErrorObject(error.message, error_type, error.data, error.stack_trace)
            )
    return ErrorObject(message=payload or "failed by durable-async callback fail", type=error_type)


def _root_of(store: SqliteBackend, arn: str) -> str:
    """The execution to resume: the caller of a chained invoke waits on its target."""
    for (caller, _), child in store.invoked.items():
        if child == arn:
            return _root_of(store, caller)
    return arn


def _was_real_time(store: SqliteBackend, arn: str) -> bool:
    return any(row.real_time for row in store.rows() if row.arn == arn)


def _replay(args: argparse.Namespace) -> int:
    from durable_async.cli._target import load_target
    from durable_async.testing._replayer import replay

    handler, _, _ = load_target(args.target)
    histories = [(file, load_history_file(file)) for file in args.files]
    failed = 0
    for file, history in histories:
        outcome = asyncio.run(replay(handler, history))
        failed += not outcome.ok
        prefix = f"{file}: " if len(histories) > 1 else ""
        sys.stdout.write(f"{prefix}{outcome}\n")
    return 1 if failed else 0
