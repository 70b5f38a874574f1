"""pytest plugin (entry point ``pytest11``): fixtures for testing durable handlers locally.

Active whenever durable-async is installed; it adds fixtures only, and imports the
testing package only when a test asks for one of them.

- ``durable_clock``: a ``VirtualClock`` shared by the backend and ``ctx.now()``.
- ``durable_backend``: a ``MemoryBackend`` on that clock.
- ``durable_runner``: a factory, ``durable_runner(handler, **options)`` -> ``LocalRunner``
  on that backend (``options`` as for ``LocalRunner``: ``functions``, ...).

Assertions that print the history on failure: ``durable_async.testing.assert_succeeded``,
``assert_failed``, ``assert_operation``, ``assert_operation_names``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from durable_async._entry import DurableHandler
    from durable_async.testing import LocalRunner, MemoryBackend, VirtualClock


@pytest.fixture
def durable_clock() -> VirtualClock:
    """The test's virtual clock: time moves only when the runner skips to a timer."""
    from durable_async.testing import VirtualClock

    return VirtualClock()


@pytest.fixture
def durable_backend(durable_clock: VirtualClock) -> MemoryBackend:
    """The in-memory fake service, on the test's clock."""
    from durable_async.testing import MemoryBackend

    return MemoryBackend(clock=durable_clock)


@pytest.fixture
def durable_runner(
    durable_backend: MemoryBackend,
) -> Callable[..., LocalRunner]:
    """Make a ``LocalRunner`` for a handler on the test's backend."""
    from durable_async.testing import LocalRunner

    def make(handler: DurableHandler[Any], **options: Any) -> LocalRunner:
        return LocalRunner(handler, durable_backend, **options)

    return make
