"""Random durable workflows, a reference interpreter, and faults to run them through.

Shared by ``tests/test_random_workflows.py`` (hypothesis draws the choices, and shrinks
them) and ``benchmarks/trials.py`` (a seeded ``random.Random`` draws them), so both judge
the SDK by the same rules:

* A ``Workflow`` is a tree of ``Step`` (async or plain, at-most- or at-least-once,
  failing its first attempts, retried or giving up), ``Wait``, ``Child`` (a child
  context), ``Gather`` (``asyncio.gather`` of branches), ``Callback`` (answered or failed
  from outside) and ``Map`` (a ``ctx.map`` whose branches run steps).
* ``reference`` says what it returns, without the SDK; ``run_trial`` runs it to the end
  through ``LocalRunner`` on a ``FaultyBackend`` under a loop that shuffles its ready
  callbacks (and, on 3.12+, optionally an eager task factory), and counts what went wrong.
* A crash is in-process: at a chosen checkpoint call the backend drops the request (or
  applies it and loses the answer), then refuses everything for the rest of that
  invocation, as if the process had died; bodies that start after it are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import json
import logging
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol, cast

import attrs
from support import every_log_record

from durable_async import (
    CallbackFailedError,
    CheckpointError,
    ChildContextError,
    DurableContext,
    DurableHandler,
    Duration,
    JitterStrategy,
    MapConfig,
    NonDeterministicExecutionError,
    ParallelConfig,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    WaitForCallbackConfig,
    WaitStrategyConfig,
    create_retry_strategy,
    durable_execution,
)
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async._wire.models import CheckpointRequest, CheckpointResponse, Operation
from durable_async.testing import (
    ErrorObject,
    InvocationStatus,
    LocalRunner,
    MemoryBackend,
)

#: Crashes and throttles (or revoked tokens) one trial may inject. Each fails an
#: invocation, which may interrupt one attempt of an at-most-once step: one that should
#: succeed gets this many spare attempts.
MAX_CRASHES = 2
MAX_THROTTLES = 2
SPARE_ATTEMPTS = MAX_CRASHES + MAX_THROTTLES
FAULT_KINDS = ("crash_before_send", "crash_lost_ack", "throttled", "stale_token", "slow")
CRASH_KINDS = frozenset({"crash_before_send", "crash_lost_ack"})
_TERMINAL = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.TIMED_OUT,
        OperationStatus.CANCELLED,
        OperationStatus.STOPPED,
    }
)


_UNTIMED = frozenset({OperationType.EXECUTION, OperationType.WAIT})

# -- the model --------------------------------------------------------------------------


@attrs.frozen
class Step:
    key: str
    plain: bool
    at_most_once: bool
    fails: int  # the first ``fails`` attempts raise
    attempts: int  # the retry strategy's max_attempts
    value: int
    yields: int = 0  # loop turns an async body takes


@attrs.frozen
class Wait:
    key: str
    seconds: int


@attrs.frozen
class Child:
    key: str
    body: tuple[Node, ...]


@attrs.frozen
class Gather:
    key: str
    branches: tuple[Node, ...]


@attrs.frozen
class Callback:
    key: str
    answer: int | None  # None: the sender fails it


@attrs.frozen
class Map:
    key: str
    items: tuple[Step, ...]
    max_concurrency: int | None = None


@attrs.frozen
class Parallel:
    key: str
    branches: tuple[Node, ...]
    max_concurrency: int | None = None


@attrs.frozen
class Race:
    """``ctx.race`` of a step against a wait that always elapses later."""

    key: str
    step: Step
    wait_seconds: int


@attrs.frozen
class Invoke:
    """``ctx.invoke`` of a durable function that doubles ``value`` in a step."""

    key: str
    value: int


@attrs.frozen
class WaitForCallback:
    """``ctx.wait_for_callback``: the submitter step runs, then the answer (None: a failure)."""

    key: str
    answer: int | None


@attrs.frozen
class Poll:
    """``ctx.wait_for_condition`` counting from 0 up to ``target``, one check per poll."""

    key: str
    target: int


Node = (
    Step
    | Wait
    | Child
    | Gather
    | Callback
    | Map
    | Parallel
    | Race
    | Invoke
    | WaitForCallback
    | Poll
)


@attrs.frozen
class Workflow:
    nodes: tuple[Node, ...]


class Chooser(Protocol):
    """Where a generated workflow's choices come from (hypothesis or a seeded RNG)."""

    def integer(self, low: int, high: int) -> int: ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def generate(choose: Chooser, *, max_nodes: int = 10) -> Workflow:
    """A random workflow; low choices give simple ones, so hypothesis shrinks toward them."""
    keys = itertools.count()
    budget = [max_nodes]

    def step(prefix: str = "s") -> Step:
        at_most_once = bool(choose.integer(0, 1))
        fails = choose.integer(0, 2)
        gives_up = fails > 0 and bool(choose.integer(0, 1))
        if gives_up:
            attempts = choose.integer(1, fails)
        else:
            attempts = fails + 1 + (SPARE_ATTEMPTS if at_most_once else 0)
        return Step(
            key=f"{prefix}{next(keys)}",
            plain=bool(choose.integer(0, 1)),
            at_most_once=at_most_once,
            fails=fails,
            attempts=attempts,
            value=choose.integer(0, 99),
            yields=choose.integer(0, 2),
        )

    def node(depth: int) -> Node:
        budget[0] -= 1
        kind = choose.integer(0, 10 if depth < 2 and budget[0] > 0 else 6)
        if kind == 0:
            return step()
        if kind == 5:
            answer = choose.integer(0, 9)
            return WaitForCallback(f"wc{next(keys)}", None if answer == 0 else answer)
        if kind == 6:
            return Poll(f"q{next(keys)}", choose.integer(1, 3))
        if kind == 1:
            return Wait(f"w{next(keys)}", choose.integer(1, 3600))
        if kind == 2:
            answer = choose.integer(0, 9)
            return Callback(f"cb{next(keys)}", None if answer == 0 else answer)
        if kind == 3:
            key = f"r{next(keys)}"
            return Race(key, step(), choose.integer(4000, 9000))
        if kind == 4:
            return Invoke(f"v{next(keys)}", choose.integer(0, 99))
        if kind == 7:
            key = f"p{next(keys)}"
            return Parallel(key, sequence(depth + 1, 1), choose.integer(0, 2) or None)
        if kind == 8:
            key = f"c{next(keys)}"
            return Child(key, sequence(depth + 1, 1))
        if kind == 9:
            key = f"g{next(keys)}"
            return Gather(key, sequence(depth + 1, 2))
        key = f"m{next(keys)}"
        items = tuple(step("i") for _ in range(choose.integer(1, 3)))
        return Map(key, items, choose.integer(0, 2) or None)

    def sequence(depth: int, minimum: int) -> tuple[Node, ...]:
        count = choose.integer(minimum, 3)
        nodes = [node(depth)]
        while len(nodes) < count and budget[0] > 0:
            nodes.append(node(depth))
        return tuple(nodes)

    return Workflow(sequence(0, 1))


def reference(node: Node | Workflow) -> Any:
    """What the workflow (or node) returns, worked out without the SDK."""
    match node:
        case Workflow(nodes):
            return [reference(n) for n in nodes]
        case Step():
            return node.value if node.fails < node.attempts else {"error": "step"}
        case Wait():
            return "waited"
        case Child(_, body):
            return [reference(n) for n in body]
        case Gather(_, branches):
            return [reference(n) for n in branches]
        case Callback(_, answer):
            return {"error": "callback"} if answer is None else json.dumps(answer)
        case Map(_, items, _) | Parallel(_, items, _):
            return [reference(n) for n in items]
        case Race(_, step):
            won = reference(step)
            return {"error": "race"} if won == {"error": "step"} else won
        case Invoke(_, value):
            return value * 2
        case WaitForCallback(_, answer):
            return {"error": "callback"} if answer is None else json.dumps(answer)
        case Poll(_, target):
            return target
    raise AssertionError(node)


def walk(node: Node | Workflow) -> list[Node]:
    """Every node of the tree, parents before their children."""
    match node:
        case Workflow(children):
            own: list[Node] = []
        case (
            Child(_, children)
            | Gather(_, children)
            | Map(_, children, _)
            | Parallel(_, children, _)
        ):
            own = [node]
        case Race(_, step):
            return [node, step]
        case _:
            return [node]
    return own + [n for child in children for n in walk(child)]


# -- the handler ------------------------------------------------------------------------


class Ledger:
    """Body runs by (step key, attempt), counted outside the SDK; a dead process counts none."""

    def __init__(self, alive: Callable[[], bool]) -> None:
        self.alive = alive
        self.runs: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def record(self, key: str, attempt: int) -> bool:
        with self._lock:
            if not self.alive():
                return False
            self.runs[(key, attempt)] += 1
            return True


def _config(node: Step) -> StepConfig:
    return StepConfig(
        step_semantics=(
            StepSemantics.AT_MOST_ONCE_PER_RETRY
            if node.at_most_once
            else StepSemantics.AT_LEAST_ONCE_PER_RETRY
        ),
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=node.attempts,
                initial_delay=Duration(1),
                jitter_strategy=JitterStrategy.NONE,
            )
        ),
    )


class ProcessGone(RuntimeError):
    """A body that started after the simulated crash: a dead process runs nothing."""


def make_handler(workflow: Workflow, ledger: Ledger) -> DurableHandler[Any]:
    """The durable handler that interprets ``workflow``."""

    def plain_body(step: StepContext, node: Step) -> int:
        if not ledger.record(node.key, step.attempt):
            raise ProcessGone(node.key)
        if step.attempt <= node.fails:
            raise ValueError(f"{node.key} fails attempt {step.attempt}")
        return node.value

    async def async_body(step: StepContext, node: Step) -> int:
        if not ledger.record(node.key, step.attempt):
            raise ProcessGone(node.key)
        for _ in range(node.yields):
            await asyncio.sleep(0)
        if step.attempt <= node.fails:
            raise ValueError(f"{node.key} fails attempt {step.attempt}")
        return node.value

    def submitter(callback_id: str, step: StepContext, *, key: str) -> None:
        if not ledger.record(f"{key}/submit", step.attempt):
            raise ProcessGone(key)

    async def check(state: int, check_context: Any) -> int:
        await asyncio.sleep(0)
        return state + 1

    def body_of(node: Step) -> Callable[[StepContext, Step], Any]:
        return plain_body if node.plain else async_body

    async def run_seq(ctx: DurableContext, nodes: tuple[Node, ...]) -> list[Any]:
        return [await run(ctx, n) for n in nodes]

    async def run(ctx: DurableContext, node: Node) -> Any:
        match node:
            case Step():
                try:
                    return await ctx.step(body_of(node), node, name=node.key, config=_config(node))
                except StepError:
                    return {"error": "step"}
            case Wait():
                await ctx.wait(seconds=node.seconds, name=node.key)
                return "waited"
            case Child():
                return await ctx.run_in_child_context(run_seq, node.body, name=node.key)
            case Gather():
                return list(await asyncio.gather(*(run(ctx, b) for b in node.branches)))
            case Callback():
                created = await ctx.create_callback(name=node.key, timeout=3600)
                try:
                    return await created.result()
                except CallbackFailedError:
                    return {"error": "callback"}
            case Map():
                items = node.items

                async def branch(item_ctx: DurableContext, index: int, *_: Any) -> Any:
                    return await run(item_ctx, items[index])

                config = MapConfig(max_concurrency=node.max_concurrency)
                batch = await ctx.map(list(range(len(items))), branch, name=node.key, config=config)
                return batch.get_results()
            case Parallel():
                funcs = [functools.partial(run, node=b) for b in node.branches]
                batch = await ctx.parallel(
                    funcs,
                    name=node.key,
                    config=ParallelConfig(max_concurrency=node.max_concurrency),
                )
                return batch.get_results()
            case Race():
                raced = node.step
                try:
                    return await ctx.race(
                        ctx.step(body_of(raced), raced, name=raced.key, config=_config(raced)),
                        ctx.wait(seconds=node.wait_seconds, name=f"{node.key}-wait"),
                        name=node.key,
                    )
                except ChildContextError:
                    return {"error": "race"}
            case Invoke():
                return await ctx.invoke(DOUBLER, {"value": node.value}, name=node.key)
            case WaitForCallback():
                submit = functools.partial(submitter, key=node.key)
                try:
                    return await ctx.wait_for_callback(
                        submit, name=node.key, config=WaitForCallbackConfig(timeout=3600)
                    )
                except CallbackFailedError:
                    return {"error": "callback"}
            case Poll():
                target = node.target
                strategy: WaitStrategyConfig[int] = WaitStrategyConfig(
                    should_continue_polling=lambda state: state < target,
                    initial_delay=Duration(1),
                    jitter_strategy=JitterStrategy.NONE,
                    max_attempts=10,
                )
                return await ctx.wait_for_condition(
                    check, initial_state=0, strategy=strategy, name=node.key
                )
        raise AssertionError(node)

    @durable_execution(logger=_QUIET)
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        return await run_seq(ctx, workflow.nodes)

    return handler


#: The function ``Invoke`` nodes call: a durable execution of its own on the same backend.
DOUBLER = "doubler"


def _double(step: StepContext, value: int) -> int:
    return value * 2


@durable_execution(logger=logging.getLogger("random_workflows"))
async def doubler(event: Any, ctx: DurableContext) -> int:
    return await ctx.step(_double, event["value"], name="double")


_QUIET = logging.getLogger("random_workflows")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


# -- faults -----------------------------------------------------------------------------


class FaultyBackend(MemoryBackend):
    """``MemoryBackend`` that injects faults at chosen checkpoint calls (1-based)."""

    def __init__(self, plan: dict[int, str], slow_turns: int = 3, page_size: int = 1000) -> None:
        super().__init__(page_size=page_size)
        self.plan = plan
        self.slow_turns = slow_turns
        self.calls = 0
        self.dead = False
        self.injected: Counter[str] = Counter()
        #: Every checkpoint token handed out: none may appear in a log line or an error.
        self.tokens: set[str] = set()

    def _new_token(self) -> str:  # type: ignore[override]
        token = super()._new_token()
        self.tokens.add(token)
        return token

    def secrets(self) -> set[str]:
        """The checkpoint tokens and callback IDs of this backend's executions."""
        found = set(self.tokens)
        for execution in self.executions.values():
            found.add(execution.token)
            for op in execution.operations.values():
                if op.callback_details is not None and op.callback_details.callback_id:
                    found.add(op.callback_details.callback_id)
        return found

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        if self.dead:
            raise CheckpointError("the invocation's process is gone", retryable=True)
        self.calls += 1
        kind = self.plan.get(self.calls)
        if kind is not None:
            self.injected[kind] += 1
        if kind == "crash_before_send":
            self.dead = True
            raise CheckpointError("crashed before sending", retryable=True)
        if kind == "throttled":
            raise CheckpointError(
                "CheckpointDurableExecution failed: ThrottlingException",
                retryable=True,
                code="ThrottlingException",
                status_code=429,
            )
        if kind == "stale_token":
            # The token was revoked (another invocation moved on): the service refuses it.
            self.executions[params.durable_execution_arn].token = self._new_token()
        if kind == "slow":
            for _ in range(self.slow_turns):
                await asyncio.sleep(0)
        response = await super().checkpoint(params, logger)
        if kind == "crash_lost_ack":
            self.dead = True
            raise CheckpointError("crashed before the answer arrived", retryable=True)
        return response


def fault_plan(choose: Chooser, *, calls: int = 30) -> dict[int, str]:
    """Up to ``MAX_CRASHES`` crashes, ``MAX_THROTTLES`` throttles or revoked tokens, and
    two slow answers, at random checkpoint calls.
    """
    plan: dict[int, str] = {}
    for _ in range(choose.integer(0, MAX_CRASHES)):
        plan[choose.integer(1, calls)] = FAULT_KINDS[choose.integer(0, 1)]
    for _ in range(choose.integer(0, MAX_THROTTLES)):
        plan.setdefault(choose.integer(1, calls), FAULT_KINDS[choose.integer(2, 3)])
    for _ in range(choose.integer(0, 2)):
        plan.setdefault(choose.integer(1, calls), "slow")
    return plan


# -- running a trial --------------------------------------------------------------------


@attrs.define
class Tally:
    """What the trials found: the last six must stay at zero."""

    trials: int = 0
    invocations: int = 0
    faults: Counter[str] = attrs.Factory(Counter)
    crashes: int = 0
    lost_completions: int = 0
    duplicated_at_most_once: int = 0
    wrong_results: int = 0
    unexpected_errors: int = 0
    extra_reruns: int = 0
    completions_recorded_twice: int = 0
    tasks_left: int = 0
    undetected_nondeterminism: int = 0
    #: Log records or errors quoting a checkpoint token or a callback ID.
    secrets_leaked: int = 0
    #: Trials whose workflow changed between invocations (expected to be refused).
    nondeterminism_checked: int = 0
    problems: list[str] = attrs.Factory(list)

    def failures(self) -> dict[str, int]:
        return {
            "lost completions": self.lost_completions,
            "duplicated at-most-once attempts": self.duplicated_at_most_once,
            "wrong results": self.wrong_results,
            "unexpected errors": self.unexpected_errors,
            "at-least-once re-runs beyond lost attempts": self.extra_reruns,
            "completions recorded twice": self.completions_recorded_twice,
            "tasks alive after an invocation": self.tasks_left,
            "unreported determinism violations": self.undetected_nondeterminism,
            "log records or errors quoting a token or callback ID": self.secrets_leaked,
        }


class _Invoker:
    """Stands in for the handler in ``LocalRunner``: one invocation, then the checks."""

    def __init__(self, handler: DurableHandler[Any], backend: FaultyBackend, tally: Tally):
        self.handler = handler
        self.backend = backend
        self.tally = tally
        self.ended: dict[tuple[str, str], Operation] = {}
        #: Invocations that failed (a crash, a throttle): each may lose running attempts.
        self.failed = 0

    async def invoke_async(self, event: Any, context: Any, *, client: Any) -> dict[str, Any]:
        self.backend.dead = False
        self.tally.invocations += 1
        try:
            return await self.handler.invoke_async(event, context, client=client)
        except BaseException:
            self.failed += 1
            raise
        finally:
            current = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            if left:
                self.tally.tasks_left += len(left)
                self.tally.problems.append(f"tasks alive after an invocation: {left}")
            self._check_nothing_lost()

    def _check_nothing_lost(self) -> None:
        ended: dict[tuple[str, str], Operation] = {}
        for arn, execution in self.backend.executions.items():
            for op_id, op in execution.operations.items():
                if op.status in _TERMINAL:
                    ended[(arn, op_id)] = op
        for (arn, op_id), before in self.ended.items():
            if self.backend.executions[arn].operations.get(op_id) != before:
                self.tally.lost_completions += 1
                self.tally.problems.append(f"recorded operation {before.name} changed")
        self.ended = ended


def _answer_callbacks(backend: MemoryBackend, arn: str, workflow: Workflow) -> bool:
    """Answer every open callback as the workflow says; False if none was open."""
    answers = {n.key: n.answer for n in walk(workflow) if isinstance(n, Callback | WaitForCallback)}
    operations = backend.executions[arn].operations
    by_id = {
        op.callback_details.callback_id: op
        for op in operations.values()
        if op.callback_details is not None
    }
    open_ids = backend.open_callbacks(arn)
    for callback_id in open_ids:
        op = by_id[callback_id]
        parent = operations.get(op.parent_id or "")
        key = op.name if op.name in answers else (parent.name if parent else None)
        answer = answers[key or ""]
        if answer is None:
            backend.fail_callback(callback_id, ErrorObject(message="no", type="Rejected"))
        else:
            backend.complete_callback(callback_id, json.dumps(answer))
    return bool(open_ids)


def _shuffled_loop(
    seed: int, eager: bool, reports: list[dict[str, Any]]
) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory: each turn runs the ready callbacks in a seeded random order.

    What the loop would log (a task's exception never retrieved, a callback that raised)
    goes to ``reports``: the SDK must leave nothing for asyncio to complain about.
    """

    class ShuffledLoop(asyncio.SelectorEventLoop):
        _rng = random.Random(seed)

        def _run_once(self) -> None:
            ready = self._ready  # type: ignore[attr-defined]
            if len(ready) > 1:
                handles = list(ready)
                self._rng.shuffle(handles)
                ready.clear()
                ready.extend(handles)
            super()._run_once()  # type: ignore[misc]

    def factory() -> asyncio.AbstractEventLoop:
        loop = ShuffledLoop()
        loop.set_exception_handler(lambda _, context: reports.append(context))
        if eager:
            loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
        return loop

    return factory


EAGER_AVAILABLE = sys.version_info >= (3, 12)


def run_trial(
    workflow: Workflow,
    plan: dict[int, str],
    tally: Tally,
    *,
    seed: int = 0,
    eager: bool = False,
    mutate: bool = False,
    page_size: int = 1000,
) -> None:
    """Run ``workflow`` to its end with ``plan``'s faults on a fresh shuffled loop.

    ``mutate``: after the first invocation the handler's first step becomes a wait, a
    determinism violation that must end the execution with NonDeterministicExecutionError.
    ``page_size``: the backend's page size; a small one makes the SDK page through the
    state (``NextMarker`` in the event and in checkpoint responses).
    """
    reports: list[dict[str, Any]] = []
    factory = _shuffled_loop(seed, eager and EAGER_AVAILABLE, reports)
    backend = FaultyBackend(plan, page_size=page_size)
    with every_log_record() as records, asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_trial(workflow, backend, tally, mutate=mutate))
        gc.collect()  # an unretrieved task exception is reported when the task is freed
    _check_no_secrets(backend, records, tally)
    for context in reports:
        tally.unexpected_errors += 1
        tally.problems.append(f"asyncio reported: {context.get('message')} {context!r}"[:600])


async def _trial(workflow: Workflow, backend: FaultyBackend, tally: Tally, *, mutate: bool) -> None:
    tally.trials += 1
    ledger = Ledger(lambda: not backend.dead)
    invoker = _Invoker(make_handler(workflow, ledger), backend, tally)
    target = _Invoker(doubler, backend, tally)  # shares the fault plan and the checks
    local = LocalRunner(
        cast(DurableHandler[Any], invoker),
        backend,
        functions={DOUBLER: cast(DurableHandler[Any], target)},
        max_invocations=200,
        pause_on_callbacks=True,
    )
    try:
        if mutate:
            await _mutated(workflow, backend, local, invoker, tally)
            return
        result = await local.run({"trial": tally.trials})
        for _ in range(100):
            if result.status is not InvocationStatus.PENDING:
                break
            if not _answer_callbacks(backend, result.arn, workflow):
                break
            result = await local.resume(result.arn)
    except Exception as error:
        tally.unexpected_errors += 1
        tally.problems.append(f"unexpected {type(error).__name__}: {error}")
        return
    finally:
        tally.faults.update(backend.injected)
        tally.crashes += sum(n for k, n in backend.injected.items() if k in CRASH_KINDS)
    lost = invoker.failed + target.failed  # invocations that ended without recording
    if result.status is not InvocationStatus.SUCCEEDED:
        tally.unexpected_errors += 1
        tally.problems.append(f"ended {result.status}: {result.error}")
        return
    expected = reference(workflow)
    if result.result != expected:
        tally.wrong_results += 1
        tally.problems.append(f"result {result.result!r} != reference {expected!r}")
    steps = {n.key: n for n in walk(workflow) if isinstance(n, Step)}
    for (key, attempt), count in ledger.runs.items():
        step = steps.get(key)  # None: a submitter, at least once per retry
        if step is not None and step.at_most_once and count > 1:
            tally.duplicated_at_most_once += 1
            tally.problems.append(f"at-most-once {key} attempt {attempt} ran {count} times")
        elif count > 1 + lost:
            tally.extra_reruns += 1
            tally.problems.append(f"{key} attempt {attempt} ran {count} times, {lost} lost")
    _check_completions(backend, result.arn, tally)


_FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


def _check_no_secrets(
    backend: FaultyBackend, records: list[logging.LogRecord], tally: Tally
) -> None:
    """No record (message, fields, traceback) quotes a checkpoint token or callback ID."""
    secrets = backend.secrets()
    for record in records:
        text = _FORMAT.format(record) + repr(record.__dict__)
        leaked = [secret for secret in secrets if secret in text]
        if leaked:
            tally.secrets_leaked += 1
            tally.problems.append(
                f"{record.name} {record.levelname} quotes {len(leaked)} secret(s)"
            )


def _check_completions(backend: MemoryBackend, arn: str, tally: Tally) -> None:
    """Every operation ended once: one terminal update each, none but waits left open."""
    execution = backend.executions[arn]
    ends = Counter(
        u.id
        for u in execution.updates
        if u.action in (OperationAction.SUCCEED, OperationAction.FAIL)
        and u.type is not OperationType.EXECUTION
    )
    for op_id, count in ends.items():
        if count > 1:
            tally.completions_recorded_twice += 1
            tally.problems.append(f"{execution.operations[op_id].name} completed {count} times")
    for op in execution.operations.values():
        # A wait may stay STARTED (a race's losing timer): the service ends it, not the SDK.
        if op.type not in _UNTIMED and op.status not in _TERMINAL:
            tally.lost_completions += 1
            tally.problems.append(f"{op.name} left {op.status}")


async def _mutated(
    workflow: Workflow,
    backend: FaultyBackend,
    local: LocalRunner,
    invoker: _Invoker,
    tally: Tally,
) -> None:
    """Record the first invocation, then replay a handler whose first step is a wait.

    The workflow is prefixed with a step and a wait, so that the first invocation records
    a step and suspends (unless the plan crashes it first).
    """
    first = Step("head", plain=False, at_most_once=False, fails=0, attempts=1, value=1)
    workflow = Workflow((first, Wait("pause", 5), *workflow.nodes))
    invoker.handler = make_handler(workflow, Ledger(lambda: not backend.dead))
    local.max_invocations = 1
    arn = backend.start_execution(json.dumps({}))
    with contextlib.suppress(CheckpointError):  # a crash: what was recorded stands
        await local.resume(arn)
    execution = backend.executions[arn]
    if execution.result_update is not None or not any(
        op.name == first.key for op in execution.operations.values()
    ):
        return  # ended already, or nothing recorded to diverge from
    changed = Workflow(
        tuple(Wait(n.key, 5) if n is first else n for n in workflow.nodes),
    )
    invoker.handler = make_handler(changed, Ledger(lambda: not backend.dead))
    tally.nondeterminism_checked += 1
    backend.plan = {}
    local.max_invocations = 200
    result = await local.resume(arn)
    error_type = (result.error.type if result.error else None) or ""
    if result.status is not InvocationStatus.FAILED or not error_type.endswith(
        NonDeterministicExecutionError.__name__
    ):
        tally.undetected_nondeterminism += 1
        tally.problems.append(f"changed workflow ended {result.status}: {result.error}")
