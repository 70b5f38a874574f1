"""``SqliteBackend``: the fake service kept in a SQLite file, so executions outlive the process.

The CLI runs a workflow until it waits on a callback, exits, and a later process (another
terminal's ``durable-async callback succeed``) answers the callback and resumes it. The
rules are ``MemoryBackend``'s (it is one); this class only loads executions from the file
when asked and writes them back after every change, each write one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import attrs

from durable_async._errors import CheckpointError
from durable_async._wire.converter import from_wire, to_wire
from durable_async._wire.enums import OperationStatus, OperationType
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ErrorObject,
    InvocationOutput,
    Operation,
    OperationUpdate,
)
from durable_async.testing._clock import Clock, VirtualClock
from durable_async.testing._history import InvocationRecord, json_ready
from durable_async.testing._memory import MemoryBackend, MemoryExecution

#: The store's file name in the working directory when none is given.
DEFAULT_STORE = ".durable-async.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY,
    target TEXT,
    status TEXT NOT NULL,
    started TEXT NOT NULL,
    clock TEXT NOT NULL,
    real_time INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    callback_id TEXT PRIMARY KEY,
    arn TEXT NOT NULL
);
"""


class StoreError(LookupError):
    """An execution or callback the store does not hold, or a file that is not a store."""


class StoreConflictError(StoreError):
    """Another process changed the execution since this one read it (nothing was written)."""


@attrs.frozen
class StoredExecution:
    """A row of the store, as ``list`` shows it."""

    arn: str
    target: str | None
    status: str
    started: datetime
    real_time: bool


class SqliteBackend(MemoryBackend):
    """A ``MemoryBackend`` whose executions live in a SQLite file."""

    def __init__(
        self, path: str | Path = DEFAULT_STORE, *, clock: Clock | None = None, page_size: int = 1000
    ) -> None:
        super().__init__(page_size=page_size, clock=clock)
        self.path = Path(path)
        try:
            # Checkpoints write from a worker thread; ``_lock`` serializes all use.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            msg = f"cannot open the store {self.path}: {error}"
            raise StoreError(msg) from error
        try:
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            self._db.close()
            msg = f"{self.path} is not a durable-async store: {error}"
            raise StoreError(msg) from error
        #: Per execution: how to load its handler ("FILE.py:name"), runner bookkeeping.
        self.targets: dict[str, str | None] = {}
        self._lock = threading.Lock()
        #: The version of each execution as read; a write expects the file to still hold it.
        self._versions: dict[str, int] = {}

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading the file ---------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def rows(self) -> Iterator[StoredExecution]:
        """Every stored execution, oldest first."""
        query = "SELECT arn, target, status, started, real_time FROM executions ORDER BY rowid"
        for arn, target, status, started, real_time in self._query(query):
            yield StoredExecution(
                arn, target, status, datetime.fromisoformat(started), bool(real_time)
            )

    def find(self, key: str) -> str:
        """The ARN of the execution whose ARN is ``key`` or ends with it."""
        arns = [str(arn) for (arn,) in self._query("SELECT arn FROM executions")]
        matches = [arn for arn in arns if arn == key] or [a for a in arns if a.endswith(key)]
        if len(matches) != 1:
            problem = "no execution" if not matches else f"{len(matches)} executions"
            msg = f"{problem} in {self.path} matches {key!r}"
            raise StoreError(msg)
        return matches[0]

    def arn_for_callback(self, callback_id: str) -> str:
        """The execution that created ``callback_id``."""
        rows = self._query("SELECT arn FROM callbacks WHERE callback_id = ?", (callback_id,))
        if not rows:
            msg = f"no callback with that ID in {self.path}"  # a bearer token: never quoted
            raise StoreError(msg)
        return str(rows[0][0])

    def load(self, arn: str) -> MemoryExecution:
        """Bring a stored execution into memory (its clock too, if virtual)."""
        if arn in self.executions:
            return self.executions[arn]
        rows = self._query(
            "SELECT target, clock, version, state FROM executions WHERE arn = ?", (arn,)
        )
        if not rows:
            msg = f"no execution {arn!r} in {self.path}"
            raise StoreError(msg)
        target, clock, version, raw = rows[0]
        self._versions[arn] = version
        state = json.loads(raw)
        execution = _execution_from_json(arn, state)
        self.executions[arn] = execution
        self.targets[arn] = target
        self.invocation_records[arn] = [_record_from_json(r) for r in state.get("records", ())]
        for caller, op_id, child in state.get("invoked", ()):
            self.invoked[(caller, op_id)] = child
            self.load(child)
        if isinstance(self.clock, VirtualClock):
            self.clock.advance_to(datetime.fromisoformat(clock))
        return execution

    # -- writing ------------------------------------------------------------------------

    def save(self, arn: str) -> None:
        """Write one execution (and index its callbacks) in one transaction.

        Optimistic: if another process wrote the execution since it was read here (say, a
        ``callback`` command resumed it while a ``--real-time`` run waited), nothing is
        written and ``StoreConflictError`` is raised, rather than losing that change.
        """
        self._write(self._snapshot(arn))

    def _snapshot(self, arn: str) -> _Row:
        """The row to write, taken on the caller's thread (the loop owns the state)."""
        execution = self.executions[arn]
        state = _execution_to_json(execution)
        state["records"] = [_record_to_json(r) for r in self.invocation_records.get(arn, ())]
        state["invoked"] = [[c, o, child] for (c, o), child in self.invoked.items() if c == arn]
        op = next(o for o in execution.operations.values() if o.type is OperationType.EXECUTION)
        return _Row(
            arn=arn,
            target=self.targets.get(arn),
            status="RUNNING" if not op.status.is_terminal else op.status.value,
            started=(op.start_timestamp or self.now).isoformat(),
            clock=self.now.isoformat(),
            real_time=not isinstance(self.clock, VirtualClock),
            state=json.dumps(state),
            callbacks=tuple(
                o.callback_details.callback_id
                for o in execution.operations.values()
                if o.callback_details is not None and o.callback_details.callback_id
            ),
        )

    def _write(self, row: _Row) -> None:
        """Write ``row`` if the file still holds the version this backend read."""
        with self._lock, _Transaction(self._db):
            found = self._db.execute(
                "SELECT version FROM executions WHERE arn = ?", (row.arn,)
            ).fetchone()
            if found is not None and found[0] != self._versions.get(row.arn):
                msg = (
                    f"execution {row.arn} was changed by another process since it was read"
                    f" from {self.path}; nothing was written"
                )
                raise StoreConflictError(msg)
            version = 1 if found is None else found[0] + 1
            self._db.execute(
                "INSERT INTO executions"
                " (arn, target, status, started, clock, real_time, version, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(arn) DO UPDATE SET target ="
                " excluded.target, status = excluded.status, clock = excluded.clock,"
                " version = excluded.version, state = excluded.state",
                (
                    row.arn,
                    row.target,
                    row.status,
                    row.started,
                    row.clock,
                    int(row.real_time),
                    version,
                    row.state,
                ),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO callbacks (callback_id, arn) VALUES (?, ?)",
                [(callback_id, row.arn) for callback_id in row.callbacks],
            )
            self._versions[row.arn] = version

    def save_all(self) -> None:
        """Write every execution in memory."""
        for arn in list(self.executions):
            self.save(arn)

    # -- every change is written --------------------------------------------------------

    def start_execution(self, input_payload: str | None, *, arn: str | None = None) -> str:
        """Create the execution in memory and in the file."""
        arn = super().start_execution(input_payload, arn=arn)
        self.save(arn)
        return arn

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        """Apply as the memory backend does, then write the execution (off the loop)."""
        arn = params.durable_execution_arn
        try:
            return await super().checkpoint(params, logger)
        finally:
            if arn in self.executions:
                # The file write leaves the loop: other steps keep running meanwhile.
                await anyio.to_thread.run_sync(self._write_checkpoint, self._snapshot(arn))

    def _write_checkpoint(self, row: _Row) -> None:
        try:
            self._write(row)
        except StoreConflictError as error:
            # The contract allows only CheckpointError: this one ends the invocation.
            raise CheckpointError(
                f"CheckpointDurableExecution failed: {error}",
                retryable=False,
                code="StoreConflict",
            ) from error

    def complete_callback(self, callback_id: str, result: str | None = None) -> None:
        """Deliver a success to a stored callback and write it."""
        arn = self._load_callback(callback_id)
        super().complete_callback(callback_id, result)
        self.save(arn)

    def fail_callback(self, callback_id: str, error: ErrorObject) -> None:
        """Deliver a failure to a stored callback and write it."""
        arn = self._load_callback(callback_id)
        super().fail_callback(callback_id, error)
        self.save(arn)

    def heartbeat_callback(self, callback_id: str) -> None:
        """Push back a stored callback's heartbeat deadline and write it."""
        arn = self._load_callback(callback_id)
        super().heartbeat_callback(callback_id)
        self.save(arn)

    def fire_due(self) -> None:
        """Fire due timers of the executions in memory and write them."""
        super().fire_due()
        self.save_all()

    def complete_invoke(
        self,
        arn: str,
        operation_id: str,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        """Record a chained invocation's outcome and write it."""
        super().complete_invoke(arn, operation_id, result=result, error=error)
        self.save(arn)

    def end_execution(
        self, arn: str, status: OperationStatus, *, outcome: InvocationOutput | None = None
    ) -> None:
        """Close the EXECUTION operation (and keep ``outcome``) and write it."""
        super().end_execution(arn, status, outcome=outcome)
        self.save(arn)

    def record_invocation(self, arn: str, record: InvocationRecord) -> None:
        """Keep the record and write it, so a later process numbers on from it."""
        super().record_invocation(arn, record)
        self.save(arn)

    def _load_callback(self, callback_id: str) -> str:
        arn = self.arn_for_callback(callback_id)
        self.load(arn)
        return arn


@attrs.frozen
class _Row:
    """One execution as the ``executions`` table holds it, plus its callback IDs."""

    arn: str
    target: str | None
    status: str
    started: str
    clock: str
    real_time: bool
    state: str
    callbacks: tuple[str, ...]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _execution_to_json(execution: MemoryExecution) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "token": execution.token,
        "operations": [json_ready(to_wire(op)) for op in execution.operations.values()],
        "result_update": json_ready(to_wire(execution.result_update))
        if execution.result_update is not None
        else None,
        "updates": [json_ready(to_wire(u)) for u in execution.updates],
        "callback_timers": {
            op_id: [when(deadline), when(heartbeat)]
            for op_id, (deadline, heartbeat) in execution.callback_timers.items()
        },
        "heartbeat_seconds": execution.heartbeat_seconds,
        "changed_outside": sorted(execution.changed_outside),
        "woken": execution.woken,
        "outcome": to_wire(execution.outcome) if execution.outcome is not None else None,
    }


def _execution_from_json(arn: str, state: Mapping[str, Any]) -> MemoryExecution:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value is not None else None

    operations = [from_wire(op, Operation) for op in state["operations"]]
    result_update = state.get("result_update")
    outcome = state.get("outcome")
    return MemoryExecution(
        arn=arn,
        token=state["token"],
        operations={op.id: op for op in operations},
        result_update=from_wire(result_update, OperationUpdate) if result_update else None,
        updates=[from_wire(u, OperationUpdate) for u in state.get("updates", ())],
        callback_timers={
            op_id: (when(deadline), when(heartbeat))
            for op_id, (deadline, heartbeat) in state.get("callback_timers", {}).items()
        },
        heartbeat_seconds=dict(state.get("heartbeat_seconds", {})),
        changed_outside=set(state.get("changed_outside", ())),
        woken=bool(state.get("woken")),
        outcome=from_wire(outcome, InvocationOutput) if outcome else None,
    )


def _record_to_json(record: InvocationRecord) -> dict[str, Any]:
    return {
        "index": record.index,
        "started": record.started.isoformat(),
        "ended": record.ended.isoformat(),
        "status": record.status.value,
        "resumed_by": list(record.resumed_by),
        "suspended_on": list(record.suspended_on),
    }


def _record_from_json(data: Mapping[str, Any]) -> InvocationRecord:
    from durable_async._wire.enums import InvocationStatus

    return InvocationRecord(
        index=data["index"],
        started=datetime.fromisoformat(data["started"]),
        ended=datetime.fromisoformat(data["ended"]),
        status=InvocationStatus(data["status"]),
        resumed_by=tuple(data["resumed_by"]),
        suspended_on=tuple(data["suspended_on"]),
    )
