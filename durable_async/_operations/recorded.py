"""Replay-safe time and randomness: values drawn once, inside a step, and replayed."""

from __future__ import annotations

import random
import uuid
from datetime import datetime

from durable_async._clock import utc_now
from durable_async._operations.step import StepContext


async def recorded_now(step: StepContext) -> datetime:
    """The current UTC time."""
    return utc_now()


async def recorded_uuid4(step: StepContext) -> uuid.UUID:
    """A random UUID."""
    return uuid.uuid4()


async def recorded_random(step: StepContext) -> float:
    """A float in [0, 1); not for cryptography."""
    return random.random()


# The steps are recorded under these names (what AWS's histories would show for them).
recorded_now.__name__ = "now"
recorded_uuid4.__name__ = "uuid4"
recorded_random.__name__ = "random"
