"""Every row of the README's "Faults and retries" table, proved through a faulty network.

The SDK's aiobotocore client talks to AWS's dex-local-runner through ``FaultProxy``, which
injects one scripted fault per test into the calls of the two durable-execution APIs. Each
test then checks, from the runner's own history, that nothing recorded was lost or
recorded twice, and that the execution ends as an undisturbed one would. Every test also
checks that no checkpoint token or callback ID the proxy saw appears in a log record, in an
error, or anywhere in the execution's history.

Faults that fail the invocation cost one re-invocation by the runner (it waits 5 s before
retrying a failed invocation, as Lambda backs off); the rest finish in one invocation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from aiobotocore.session import get_session
from dex_harness import REGION, DexRunner, InvokeEndpoint, history, wait_terminal
from support import every_log_record

from durable_async import (
    AioBotocoreClient,
    BackendError,
    CheckpointError,
    DurableContext,
    ExecutionStateError,
    StepContext,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._wire.enums import OperationAction, OperationSubType, OperationType
from durable_async._wire.models import (
    CheckpointRequest,
    GetExecutionStateRequest,
    OperationUpdate,
)

from .proxy import CHECKPOINT, STATE, Fault, FaultKind, FaultProxy, FaultSchedule

pytestmark = [pytest.mark.runner, pytest.mark.anyio]

LOG = logging.getLogger("tests.faults")
STEPS = 3
#: The execution's input: a payload, never to be logged above DEBUG.
PAYLOAD = {"card": "4111-1111-PROXY-PAYLOAD"}
EXPECTED = sum(n * 10 for n in range(1, STEPS + 1))


@attrs.define
class Outcome:
    described: dict[str, Any]
    events: list[dict[str, Any]]
    endpoint: InvokeEndpoint
    proxy: FaultProxy
    ran: Counter[str]

    def statuses(self) -> list[str]:
        return [out["Status"] for _, _, out in self.endpoint.invocations]

    def count(self, event_type: str) -> Counter[str]:
        return Counter(e["Name"] for e in self.events if e["EventType"] == event_type)


@pytest.fixture
def every_record() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger, at every level, while the test runs."""
    with every_log_record() as records:
        yield records


def secrets_seen(proxy: FaultProxy) -> set[str]:
    return {s for s in proxy.secrets if len(s) >= 8}


def assert_no_secret_anywhere(outcome: Outcome, records: list[logging.LogRecord]) -> None:
    """No token or callback ID the proxy carried is in a log, an error or the history."""
    secrets = secrets_seen(outcome.proxy)
    assert secrets, "the proxy saw no checkpoint token"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    # botocore's own DEBUG records dump whole requests: theirs, not the SDK's.
    texts = [formatter.format(r) for r in records if not r.name.startswith(("botocore", "aiobo"))]
    for _, error in outcome.endpoint.errors:
        texts.extend(traceback.format_exception(error))
        texts.append(repr(error))
    texts.append(json.dumps(outcome.events, default=str))
    texts.append(json.dumps(outcome.described, default=str))
    leaked = [s for s in secrets for text in texts if s in text]
    assert leaked == []
    above_debug = [
        formatter.format(r)
        for r in records
        if r.levelno > logging.DEBUG and not r.name.startswith(("botocore", "aiobo"))
    ]
    assert [t for t in above_debug if PAYLOAD["card"] in t] == []


def workflow(ran: Counter[str]) -> Any:
    async def work(step: StepContext, n: int) -> int:
        ran[f"s{n}"] += 1
        return n * 10

    @durable_execution
    async def steps(event: dict[str, Any], ctx: DurableContext) -> int:
        total = 0
        for n in range(1, STEPS + 1):
            total += await ctx.step(work, n, name=f"s{n}")
        return total

    return steps


async def run(
    dex_runner: DexRunner,
    schedule: FaultSchedule,
    *,
    read_timeout: float = 2,
    max_attempts: int = 4,
    within: float = 40,
) -> Outcome:
    ran: Counter[str] = Counter()
    handler = workflow(ran)
    async with FaultProxy(dex_runner.url, schedule) as proxy:
        client = AioBotocoreClient(
            endpoint_url=proxy.url,
            region_name=REGION,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
        )

        async def invoke(event: dict[str, Any]) -> dict[str, Any]:
            proxy.note_event(event)
            output: dict[str, Any] = await handler.invoke_async(event, None, client=client)
            return output

        try:
            async with (
                InvokeEndpoint({"steps": invoke}) as endpoint,
                get_session().create_client(
                    "lambda", endpoint_url=dex_runner.url, region_name=REGION
                ) as lam,
            ):
                arn = await asyncio.to_thread(
                    dex_runner.start_execution, "steps", PAYLOAD, lambda_endpoint=endpoint.url
                )
                described = await wait_terminal(lam, arn, within=within)
                events = await history(lam, arn)
        finally:
            await client.aclose()
    assert schedule.script_done, "a scripted fault was never reached"
    return Outcome(described, events, endpoint, proxy, ran)


def assert_nothing_lost(outcome: Outcome, *, reruns_allowed: int = 0) -> None:
    """SUCCEEDED with the undisturbed result; every step recorded exactly once."""
    assert outcome.described["Status"] == "SUCCEEDED", outcome.described
    assert json.loads(outcome.described["Result"]) == EXPECTED
    names = [f"s{n}" for n in range(1, STEPS + 1)]
    assert outcome.count("StepSucceeded") == Counter(names)
    assert set(outcome.ran) == set(names)
    assert sum(outcome.ran.values()) <= STEPS + reruns_allowed


def retried_with_same_client_token(proxy: FaultProxy, kind: FaultKind) -> None:
    """The call that met ``kind`` was sent again, with the same ClientToken."""
    calls = proxy.calls_of(CHECKPOINT)
    faulty = [i for i, call in enumerate(calls) if call.fault and call.fault.kind is kind]
    assert faulty
    for i in faulty:
        assert calls[i].client_token
        assert calls[i + 1].client_token == calls[i].client_token
        assert calls[i + 1].fault is None
        assert calls[i + 1].status == 200


# -- retried within the call: the invocation goes on -------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(FaultKind.STATUS, status=500),
        Fault(FaultKind.STATUS, status=503),
        Fault(FaultKind.THROTTLE),
        Fault(FaultKind.RESET),
        Fault(FaultKind.TIMEOUT),
        Fault(FaultKind.LOST_AFTER_COMMIT),
    ],
    ids=["500", "503", "429", "reset", "timeout", "lost-after-commit"],
)
async def test_a_transient_checkpoint_fault_is_retried_with_the_same_client_token(
    dex_runner: DexRunner, fault: Fault, every_record: list[logging.LogRecord]
) -> None:
    schedule = FaultSchedule({CHECKPOINT: [None, fault]})
    outcome = await run(dex_runner, schedule, read_timeout=0.5)
    assert_nothing_lost(outcome)
    assert outcome.statuses() == ["SUCCEEDED"]  # one invocation: the fault never surfaced
    retried_with_same_client_token(outcome.proxy, fault.kind)
    # A replayed checkpoint that the runner had recorded is answered from its cache.
    assert outcome.count("StepStarted") == Counter(f"s{n}" for n in range(1, STEPS + 1))
    assert_no_secret_anywhere(outcome, every_record)


async def test_a_slow_checkpoint_is_waited_for_not_retried(
    dex_runner: DexRunner, every_record: list[logging.LogRecord]
) -> None:
    schedule = FaultSchedule({CHECKPOINT: [Fault(FaultKind.SLOW, delay=0.3)] * 2})
    outcome = await run(dex_runner, schedule)
    assert_nothing_lost(outcome)
    assert outcome.statuses() == ["SUCCEEDED"]
    tokens = [call.client_token for call in outcome.proxy.calls_of(CHECKPOINT)]
    assert len(tokens) == len(set(tokens))  # no call was sent twice
    assert_no_secret_anywhere(outcome, every_record)


async def test_a_duplicated_checkpoint_is_recorded_once(
    dex_runner: DexRunner, every_record: list[logging.LogRecord]
) -> None:
    schedule = FaultSchedule({CHECKPOINT: [Fault(FaultKind.DUPLICATE)] * 3})
    outcome = await run(dex_runner, schedule)
    assert_nothing_lost(outcome)
    assert outcome.statuses() == ["SUCCEEDED"]
    duplicated = [c for c in outcome.proxy.calls_of(CHECKPOINT) if c.duplicate_matched is not None]
    assert len(duplicated) == 3
    assert all(c.duplicate_matched for c in duplicated)  # answered from the ClientToken cache
    assert outcome.count("StepStarted") == Counter(f"s{n}" for n in range(1, STEPS + 1))
    assert_no_secret_anywhere(outcome, every_record)


# -- not retried within the call: the invocation ends, Lambda invokes again -------------
# The runner waits 5 s before invoking again, so these rows run side by side in one test.


async def failed_invocation_row(
    dex_runner: DexRunner, fault: list[Fault], max_attempts: int = 4
) -> Outcome:
    """A fault that outlasts the call: a retryable error fails the invocation."""
    schedule = FaultSchedule({CHECKPOINT: [None, *fault]})
    outcome = await run(dex_runner, schedule, max_attempts=max_attempts)
    [(_, error)] = outcome.endpoint.errors
    assert isinstance(error, CheckpointError)
    assert error.retryable is True
    # The runner (as Lambda) invoked again and the execution finished; the step whose
    # checkpoint was lost ran once more (at least once per retry), no other did.
    assert outcome.statuses() == ["SUCCEEDED"]
    assert_nothing_lost(outcome, reruns_allowed=1)
    return outcome


async def revoked_row(dex_runner: DexRunner) -> Outcome:
    """A withdrawn token: the invocation ends PENDING and sends nothing more."""
    outcome = await run(dex_runner, FaultSchedule({CHECKPOINT: [None, Fault(FaultKind.REVOKED)]}))
    assert outcome.endpoint.errors == []
    assert outcome.statuses()[0] == "PENDING"
    calls = outcome.proxy.calls_of(CHECKPOINT)
    revoked_at = next(i for i, c in enumerate(calls) if c.fault is not None)
    # The next call carries a token from the next invocation's event, not the withdrawn one.
    assert calls[revoked_at + 1].request_token in outcome.proxy.event_tokens[1:]
    assert_nothing_lost(outcome, reruns_allowed=1)
    return outcome


async def test_faults_outlasting_the_call_end_the_invocation_and_the_next_one_finishes(
    dex_runner: DexRunner, every_record: list[logging.LogRecord]
) -> None:
    outcomes = await asyncio.gather(
        # Every attempt the client makes fails (two here, to spare botocore's backoff).
        failed_invocation_row(dex_runner, [Fault(FaultKind.STATUS, status=503)] * 2, 2),
        failed_invocation_row(dex_runner, [Fault(FaultKind.STALE_TOKEN)]),
        failed_invocation_row(dex_runner, [Fault(FaultKind.TRUNCATED)]),
        revoked_row(dex_runner),
    )
    truncated = outcomes[2].endpoint.errors[0][1]
    assert "GarbledAnswerError" in str(truncated)  # not mistaken for a withdrawn token
    for outcome in outcomes:
        assert_no_secret_anywhere(outcome, every_record)


# -- GetDurableExecutionState ------------------------------------------------------------


def _start(position: int) -> OperationUpdate:
    return OperationUpdate(
        id=operation_id(None, position),
        type=OperationType.STEP,
        action=OperationAction.START,
        name=f"s{position}",
        sub_type=OperationSubType.STEP,
    )


async def read_state_through(dex_runner: DexRunner, schedule: FaultSchedule) -> dict[str, Any]:
    """Inside an invocation: record seven steps, then read them back one per page."""
    seen: dict[str, Any] = {}
    async with FaultProxy(dex_runner.url, schedule) as proxy:
        client = AioBotocoreClient(endpoint_url=proxy.url, region_name=REGION, read_timeout=0.5)

        async def pager(event: dict[str, Any]) -> dict[str, Any]:
            arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
            proxy.note_event(event)
            updates = tuple(_start(n) for n in range(1, 8))
            response = await client.checkpoint(CheckpointRequest(arn, token, updates), LOG)
            assert response.checkpoint_token is not None
            marker, ids = None, list[str]()
            try:
                while True:
                    page = await client.get_execution_state(
                        GetExecutionStateRequest(arn, response.checkpoint_token, marker, 1), LOG
                    )
                    ids.extend(op.id for op in page.operations)
                    if not (marker := page.next_marker):
                        break
            except BackendError as exc:
                seen["error"] = exc
            seen["ids"] = ids
            return {"Status": "SUCCEEDED", "Result": "null"}

        try:
            async with (
                InvokeEndpoint({"pager": pager}) as endpoint,
                get_session().create_client(
                    "lambda", endpoint_url=dex_runner.url, region_name=REGION
                ) as lam,
            ):
                arn = await asyncio.to_thread(
                    dex_runner.start_execution, "pager", {}, lambda_endpoint=endpoint.url
                )
                await wait_terminal(lam, arn)
        finally:
            await client.aclose()
    assert endpoint.errors == []
    seen["proxy"] = proxy
    return seen


async def test_transient_state_read_faults_are_retried_and_every_page_arrives(
    dex_runner: DexRunner,
) -> None:
    faults = [
        Fault(FaultKind.STATUS, status=502),
        Fault(FaultKind.THROTTLE),
        Fault(FaultKind.RESET),
        Fault(FaultKind.TIMEOUT),
        Fault(FaultKind.LOST_AFTER_COMMIT),
        Fault(FaultKind.DUPLICATE),
        Fault(FaultKind.SLOW, delay=0.1),
    ]
    schedule = FaultSchedule({STATE: [f for fault in faults for f in (fault, None)]})
    seen = await read_state_through(dex_runner, schedule)
    assert "error" not in seen
    assert seen["ids"][1:] == [operation_id(None, n) for n in range(1, 8)]
    assert sum(schedule.injected.values()) == len(faults)


@pytest.mark.parametrize(
    "fault",
    [Fault(FaultKind.STALE_TOKEN), Fault(FaultKind.TRUNCATED)],
    ids=["stale-token", "truncated-page"],
)
async def test_a_state_read_fault_that_outlasts_the_call_is_a_retryable_error(
    dex_runner: DexRunner, fault: Fault
) -> None:
    seen = await read_state_through(dex_runner, FaultSchedule({STATE: [None, fault]}))
    error = seen["error"]
    assert isinstance(error, ExecutionStateError)
    assert error.retryable is True  # the invocation fails and Lambda invokes again
    printed = "".join(traceback.format_exception(error))
    assert not [s for s in secrets_seen(seen["proxy"]) if s in printed]


async def test_a_non_retryable_answer_is_not_retried(dex_runner: DexRunner) -> None:
    """The runner's own 4xx for an unknown execution: one call, a non-retryable error."""
    async with FaultProxy(dex_runner.url) as proxy:
        client = AioBotocoreClient(endpoint_url=proxy.url, region_name=REGION)
        try:
            with pytest.raises(CheckpointError) as caught:
                await client.checkpoint(
                    CheckpointRequest("arn:x/0/1", "bm90LWEtdG9rZW4=", (_start(1),)), LOG
                )
        finally:
            await client.aclose()
    assert caught.value.retryable is False
    assert len(proxy.calls_of(CHECKPOINT)) == 1


# -- seeded random faults (the schedule the soak runner draws from) ----------------------

IN_CALL_FAULTS = (
    Fault(FaultKind.STATUS, status=500),
    Fault(FaultKind.STATUS, status=503),
    Fault(FaultKind.RESET),
    Fault(FaultKind.LOST_AFTER_COMMIT),
    Fault(FaultKind.DUPLICATE),
    Fault(FaultKind.SLOW, delay=0.05),
)


def test_a_seed_draws_the_same_faults_every_time() -> None:
    def draws(seed: int) -> list[Fault | None]:
        schedule = FaultSchedule(seed=seed, rate=0.5, kinds=IN_CALL_FAULTS)
        return [schedule.next(CHECKPOINT) for _ in range(50)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert 10 < sum(fault is not None for fault in draws(7)) < 40


@pytest.mark.parametrize("seed", [1])
async def test_a_seeded_random_fault_run_loses_nothing(
    dex_runner: DexRunner, seed: int, every_record: list[logging.LogRecord]
) -> None:
    schedule = FaultSchedule(seed=seed, rate=0.3, kinds=IN_CALL_FAULTS)
    outcome = await run(dex_runner, schedule, read_timeout=0.5)
    assert sum(schedule.injected.values()) > 0
    # Runs of up to four faults in a row are absorbed by botocore's attempts; a longer one
    # fails an invocation, which the runner retries: either way nothing is lost.
    assert outcome.statuses()[-1] == "SUCCEEDED"
    assert_nothing_lost(outcome, reruns_allowed=len(outcome.endpoint.errors))
    assert_no_secret_anywhere(outcome, every_record)
