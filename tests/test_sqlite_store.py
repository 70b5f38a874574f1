"""The SQLite store keeps executions across processes and never loses another's write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from durable_async import DurableContext, durable_execution
from durable_async.testing import (
    InvocationStatus,
    LocalRunner,
    SqliteBackend,
    StoreConflictError,
)


@durable_execution
async def asks(event: Any, ctx: DurableContext) -> Any:
    callback = await ctx.create_callback(name="ask")
    return await callback.result()


@pytest.mark.anyio
async def test_an_execution_read_back_from_the_file_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    with SqliteBackend(path) as first:
        parked = await LocalRunner(asks, first, pause_on_callbacks=True).run()
        clock = first.now
    assert parked.status is InvocationStatus.PENDING
    with SqliteBackend(path) as second:
        second.complete_callback(parked.open_callbacks[0], "yes")
        assert second.now == clock  # the virtual clock was stored with the execution
        done = await LocalRunner(asks, second).resume(parked.arn)
    assert (done.status, done.result) == (InvocationStatus.SUCCEEDED, "yes")
    assert [r.index for r in done.history.invocations] == [1, 2]
    with SqliteBackend(path) as third:  # how it ended was stored: no invocation needed
        third.load(parked.arn)
        again = await LocalRunner(asks, third).resume(parked.arn)
    assert (again.status, again.result, again.invocations) == (done.status, "yes", 0)
    assert len(again.history.invocations) == 2


@pytest.mark.anyio
async def test_a_write_over_another_process_change_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with SqliteBackend(path) as one, SqliteBackend(path) as other:
        parked = await LocalRunner(asks, one, pause_on_callbacks=True).run()
        other.load(parked.arn)
        one.complete_callback(parked.open_callbacks[0], '"first"')
        with pytest.raises(StoreConflictError, match="changed by another process"):
            other.complete_callback(parked.open_callbacks[0], '"second"')
    with SqliteBackend(path) as reader:
        execution = reader.load(parked.arn)
    (callback,) = [op for op in execution.operations.values() if op.name == "ask"]
    assert callback.callback_details is not None
    assert callback.callback_details.result == '"first"'


@pytest.mark.anyio
async def test_a_stale_runner_stops_instead_of_overwriting(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with SqliteBackend(path) as one, SqliteBackend(path) as other:
        parked = await LocalRunner(asks, one, pause_on_callbacks=True).run()
        other.load(parked.arn)
        one.complete_callback(parked.open_callbacks[0], '"fresh"')
        other.executions[parked.arn].woken = True  # as if its own timer had fired
        with pytest.raises(StoreConflictError):
            await LocalRunner(asks, other).resume(parked.arn)


@pytest.mark.anyio
async def test_checkpoints_are_written_off_the_event_loop(tmp_path: Path) -> None:
    import threading

    writers: list[int] = []

    class Watched(SqliteBackend):
        def _write(self, row: Any) -> None:
            writers.append(threading.get_ident())
            super()._write(row)

    @durable_execution
    async def steps(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(lambda _: 1, name="one") + await ctx.step(lambda _: 2, name="two")

    with Watched(tmp_path / "store.sqlite3") as backend:
        loop_thread = threading.get_ident()
        result = await LocalRunner(steps, backend).run()
        checkpoints = len(backend.checkpoint_calls)
    assert result.result == 3
    off_loop = [ident for ident in writers if ident != loop_thread]
    assert len(off_loop) == checkpoints  # every checkpoint's write, and only those
