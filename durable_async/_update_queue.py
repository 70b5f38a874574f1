"""What the checkpoint batcher queues: updates in order, their sizes, waiters and due times.

The batcher (``_batcher``) decides when to send; this module holds the queue it sends
from and the size bound each update counts against a call's byte limit.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from durable_async._wire.models import OperationUpdate

_UPDATE_OVERHEAD = 400


def _field_size(text: str | None) -> int:
    """Bytes ``text`` takes in the request body: JSON-escaped, non-ASCII as 6-byte escapes."""
    if not text:
        return 0
    return len(json.dumps(text))


def update_size(update: OperationUpdate) -> int:
    """An upper bound on the bytes ``update`` adds to a request body."""
    size = _UPDATE_OVERHEAD + _field_size(update.payload) + _field_size(update.name)
    if update.error is not None:
        error = update.error
        size += _field_size(error.message) + _field_size(error.type) + _field_size(error.data)
        size += sum(_field_size(line) for line in error.stack_trace or ())
    return size


class UpdateQueue:
    """Queued updates in order, with each one's size, waiter (if any) and due time.

    Parallel deques, not a record per update: every branch of a large map has updates
    queued at once, and a record each would be one more object per update for the
    cyclic GC to walk.
    """

    __slots__ = ("_dues", "_sizes", "_updates", "_waiters")

    def __init__(self) -> None:
        self._updates: deque[OperationUpdate] = deque()
        self._sizes: deque[int] = deque()
        self._waiters: deque[asyncio.Future[None] | None] = deque()
        #: Loop time until which a deferred update may wait for company; None: send soon.
        self._dues: deque[float | None] = deque()

    def __len__(self) -> int:
        return len(self._updates)

    def append(
        self, update: OperationUpdate, waiter: asyncio.Future[None] | None, due: float | None
    ) -> None:
        size = update_size(update)  # first: if it raises, the deques stay aligned
        self._updates.append(update)
        self._sizes.append(size)
        self._waiters.append(waiter)
        self._dues.append(due)

    def first_due(self) -> float | None:
        return self._dues[0]

    def take(self, max_updates: int, max_bytes: int) -> Batch:
        """The oldest updates that fit in one call (always at least one)."""
        batch = Batch()
        size = 0
        while self._updates and len(batch.updates) < max_updates:
            if batch.updates and size + self._sizes[0] > max_bytes:
                break
            size += self._sizes.popleft()
            batch.updates.append(self._updates.popleft())
            waiter = self._waiters.popleft()
            if waiter is not None:
                batch.waiters.append(waiter)
            if self._dues.popleft() is None:
                batch.urgent += 1
        return batch

    def take_waiters(self) -> list[asyncio.Future[None]]:
        """Empty the queue; the waiters of what it held."""
        waiters = [waiter for waiter in self._waiters if waiter is not None]
        for queue in (self._updates, self._sizes, self._waiters, self._dues):
            queue.clear()
        return waiters


class Batch:
    """The updates of one checkpoint call, and the futures waiting for them."""

    __slots__ = ("updates", "urgent", "waiters")

    def __init__(self) -> None:
        self.updates: list[OperationUpdate] = []
        self.waiters: list[asyncio.Future[None]] = []
        #: How many of the updates were not deferred.
        self.urgent = 0
