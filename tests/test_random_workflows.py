"""Random workflows with random faults and crashes end exactly as a reference says.

Hypothesis draws a workflow (``tests/random_workflows.py``: steps, waits, child
contexts, gathers, callbacks, maps, parallels, races, invokes, wait_for_callback and
wait_for_condition), a fault plan (crashes that drop a checkpoint or lose its answer,
throttling, slow answers) and a scheduling seed; the workflow runs to its end through
``LocalRunner`` on a loop that shuffles its ready callbacks (and with an eager task
factory where Python has one). Whatever happens, every completion is recorded exactly
once, no at-most-once attempt runs twice, no task outlives its invocation, and the
result is the reference interpreter's. A workflow changed between invocations ends with
``NonDeterministicExecutionError``.

``DURABLE_PROPERTY_EXAMPLES`` sets the number of examples (CI: 50).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_workflows import (
    EAGER_AVAILABLE,
    Callback,
    Child,
    Gather,
    Invoke,
    Map,
    Parallel,
    Poll,
    Race,
    Step,
    Tally,
    Wait,
    WaitForCallback,
    fault_plan,
    generate,
    run_trial,
)

_EXAMPLES = int(os.environ.get("DURABLE_PROPERTY_EXAMPLES", "50"))
_SETTINGS = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class DataChooser:
    """Draws each choice from hypothesis, so failing cases shrink to simple workflows."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def integer(self, low: int, high: int) -> int:
        value: int = self.data.draw(st.integers(low, high))
        return value


def _assert_clean(tally: Tally) -> None:
    assert tally.problems == [], tally.problems
    assert all(count == 0 for count in tally.failures().values()), tally.failures()


@_SETTINGS
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    eager=st.booleans(),
    page_size=st.sampled_from([1000, 2]),
)
def test_random_workflows_with_faults_end_as_the_reference_says(
    data: Any, seed: int, eager: bool, page_size: int
) -> None:
    choose = DataChooser(data)
    workflow = generate(choose)
    plan = fault_plan(choose)
    tally = Tally()
    run_trial(
        workflow, plan, tally, seed=seed, eager=eager and EAGER_AVAILABLE, page_size=page_size
    )
    _assert_clean(tally)


@settings(_SETTINGS, max_examples=max(10, _EXAMPLES // 5))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_a_workflow_changed_between_invocations_fails_as_non_deterministic(
    data: Any, seed: int
) -> None:
    choose = DataChooser(data)
    tally = Tally()
    run_trial(generate(choose), fault_plan(choose), tally, seed=seed, mutate=True)
    _assert_clean(tally)


def test_every_kind_of_node_is_generated() -> None:
    """The generator reaches every node kind (else the property proves less than it says)."""
    import random

    from random_workflows import RandomChooser, walk

    kinds: set[type] = set()
    rng = random.Random(0)
    for _ in range(200):
        kinds.update(type(n) for n in walk(generate(RandomChooser(rng))))
    assert kinds == {
        Step, Wait, Child, Gather, Callback, Map, Parallel, Race, Invoke, WaitForCallback, Poll
    }  # fmt: skip
