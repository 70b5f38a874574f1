"""Serialization: AWS's extended-type wire format by default; custom serdes per step."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from support import sent_updates

from durable_async import (
    DurableContext,
    ExtendedTypeSerDes,
    JsonSerDes,
    PassThroughSerDes,
    SerDesContext,
    SerDesError,
    StepConfig,
    durable_execution,
)
from durable_async._wire.enums import OperationAction
from durable_async.testing import LocalRunner

CTX = SerDesContext("op", "arn")

# Expected strings computed once with AWS's SDK:
#   aws_durable_execution_sdk_python.serdes.ExtendedTypeSerDes().serialize(value, ctx)
AWS_ENCODINGS: list[tuple[str, Any, str]] = [
    ("str", "hello", '"hello"'),
    ("non-ascii str", "héllo", '"h\\u00e9llo"'),
    ("int", 42, "42"),
    ("float", 1.5, "1.5"),
    ("bool", True, "true"),
    ("none", None, "null"),
    ("list of ints", [1, 2, 3], "[1,2,3]"),
    ("list of lists", [[1, 2], [3]], "[[1,2],[3]]"),
    ("mixed plain list", [1, "a", None, True, 2.5], '[1,"a",null,true,2.5]'),
    ("empty list", [], "[]"),
    ("dict", {"a": 1, "b": "x"}, '{"t":"m","v":{"a":{"t":"i","v":1},"b":{"t":"s","v":"x"}}}'),
    ("empty dict", {}, '{"t":"m","v":{}}'),
    (
        "nested dict with list",
        {"a": {"b": [1, 2]}, "c": None},
        '{"t":"m","v":{"a":{"t":"m","v":{"b":{"t":"l","v":[{"t":"i","v":1},{"t":"i","v":2}]}}},'
        '"c":{"t":"n","v":null}}}',
    ),
    (
        "list with a dict",
        [1, {"a": 1}],
        '{"t":"l","v":[{"t":"i","v":1},{"t":"m","v":{"a":{"t":"i","v":1}}}]}',
    ),
    ("tuple", (1, "a"), '{"t":"t","v":[{"t":"i","v":1},{"t":"s","v":"a"}]}'),
    ("empty tuple", (), '{"t":"t","v":[]}'),
    ("dict with tuple", {"k": (1,)}, '{"t":"m","v":{"k":{"t":"t","v":[{"t":"i","v":1}]}}}'),
    (
        "datetime",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        '{"t":"dt","v":"2026-01-02T03:04:05+00:00"}',
    ),
    (
        "naive datetime with microseconds",
        datetime(2026, 1, 2, 3, 4, 5, 123456),
        '{"t":"dt","v":"2026-01-02T03:04:05.123456"}',
    ),
    ("date", date(2026, 1, 2), '{"t":"D","v":"2026-01-02"}'),
    (
        "dict of float, bool, none",
        {"x": 1.5, "b": True, "n": None},
        '{"t":"m","v":{"x":{"t":"f","v":1.5},"b":{"t":"b","v":true},"n":{"t":"n","v":null}}}',
    ),
    (
        "tuple of bool and big int",
        (True, 2**70),
        '{"t":"t","v":[{"t":"b","v":true},{"t":"i","v":1180591620717411303424}]}',
    ),
    ("list of bytes", [b"x"], '{"t":"l","v":[{"t":"B","v":"eA=="}]}'),
    ("decimal", Decimal("3.14"), '{"t":"d","v":"3.14"}'),
    ("bytes", b"\x00\x01hi", '{"t":"B","v":"AAFoaQ=="}'),
    (
        "uuid",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        '{"t":"u","v":"12345678-1234-5678-1234-567812345678"}',
    ),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(v, e) for _, v, e in AWS_ENCODINGS],
    ids=[i for i, _, _ in AWS_ENCODINGS],
)
def test_default_encoding_matches_aws(value: Any, expected: str) -> None:
    assert ExtendedTypeSerDes().serialize(value, CTX) == expected


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(v, e) for _, v, e in AWS_ENCODINGS],
    ids=[i for i, _, _ in AWS_ENCODINGS],
)
def test_decoding_aws_payloads_round_trips(value: Any, encoded: str) -> None:
    decoded = ExtendedTypeSerDes().deserialize(encoded, CTX)
    assert decoded == value
    assert type(decoded) is type(value)


def test_zulu_datetime_from_other_sdks_decodes() -> None:
    decoded = ExtendedTypeSerDes().deserialize('{"t":"dt","v":"2026-01-02T03:04:05Z"}', CTX)
    assert decoded == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ('{"a": 1}', "neither plain JSON nor"),
        ('{"t":"zz","v":1}', "unknown type tag 'zz'"),
    ],
)
def test_bad_payloads_raise_serdes_error(payload: str, match: str) -> None:
    with pytest.raises(SerDesError, match=match):
        ExtendedTypeSerDes().deserialize(payload, CTX)


@pytest.mark.parametrize(
    ("value", "match"),
    [({1: "a"}, "dict keys must be strings"), (object(), "cannot store a value of type object")],
)
def test_unencodable_values_raise_serdes_error(value: Any, match: str) -> None:
    with pytest.raises(SerDesError, match=match):
        ExtendedTypeSerDes().serialize(value, CTX)


def test_json_and_passthrough_serdes() -> None:
    assert JsonSerDes[Any]().serialize({"a": [1, 2]}, CTX) == '{"a": [1, 2]}'
    assert JsonSerDes[Any]().deserialize('{"a":[1,2]}', CTX) == {"a": [1, 2]}
    assert PassThroughSerDes().serialize("raw <text>", CTX) == "raw <text>"
    assert PassThroughSerDes().deserialize("raw <text>", CTX) == "raw <text>"


# -- serdes inside executions ---------------------------------------------------------


def step_payloads(runner: LocalRunner) -> list[str | None]:
    return [u.payload for u in sent_updates(runner.backend) if u.action is OperationAction.SUCCEED]


@pytest.mark.anyio
async def test_step_results_are_stored_in_aws_format() -> None:
    value = {"id": uuid.UUID(int=1), "items": [1, 2]}

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        got = await ctx.step(lambda _: value, name="v")
        assert got == value
        return "ok"

    runner = LocalRunner(handler)
    assert (await runner.run()).result == "ok"
    assert step_payloads(runner) == [ExtendedTypeSerDes().serialize(value, CTX)]
    assert json.loads(step_payloads(runner)[0] or "")["t"] == "m"


class Upper:
    """A sync custom serdes that records the contexts it is given."""

    def __init__(self) -> None:
        self.contexts: list[SerDesContext] = []

    def serialize(self, value: str, context: SerDesContext) -> str:
        self.contexts.append(context)
        return "U:" + value.upper()

    def deserialize(self, data: str, context: SerDesContext) -> str:
        self.contexts.append(context)
        return data.removeprefix("U:").lower() + "!"


class AsyncReversed:
    """An async custom serdes."""

    async def serialize(self, value: str, context: SerDesContext) -> str:
        return value[::-1]

    async def deserialize(self, data: str, context: SerDesContext) -> str:
        return data[::-1]


@pytest.mark.anyio
async def test_custom_sync_and_async_serdes_per_step() -> None:
    upper = Upper()
    seen: list[list[str]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        a = await ctx.step(lambda _: "abc", name="a", config=StepConfig(serdes=upper))
        b = await ctx.step(lambda _: "xyz", name="b", config=StepConfig(serdes=AsyncReversed()))
        c = await ctx.step(lambda _: "plain", name="c")
        seen.append([a, b, c])
        await ctx.wait(seconds=1)
        return [a, b, c]

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert step_payloads(runner) == ["U:ABC", "zyx", '"plain"']
    # First run returns what replay returns: the deserialized payload.
    assert seen == [["abc!", "xyz", "plain"]] * 2
    assert result.result == ["abc!", "xyz", "plain"]
    assert {c.durable_execution_arn for c in upper.contexts} == {result.arn}
    assert len({c.operation_id for c in upper.contexts}) == 1


class Broken:
    def serialize(self, value: Any, context: SerDesContext) -> str:
        raise ValueError("cannot encode")

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        raise ValueError("cannot decode")


class ReturnsBytes:
    def serialize(self, value: Any, context: SerDesContext) -> Any:
        return b"bytes"

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        return data


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("serdes", "match"),
    [(Broken(), "serialization failed .*cannot encode"), (ReturnsBytes(), "returned bytes")],
)
async def test_failing_custom_serdes_fails_the_step(serdes: Any, match: str) -> None:
    caught: list[SerDesError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(lambda _: "x", name="s", config=StepConfig(serdes=serdes))
        except SerDesError as exc:
            caught.append(exc)
        return "handled"

    runner = LocalRunner(handler)
    assert (await runner.run()).result == "handled"
    (error,) = caught
    assert re_search(match, str(error))
    assert [u.action for u in sent_updates(runner.backend)][-1] is OperationAction.FAIL


@pytest.mark.anyio
async def test_serdes_storing_nothing_returns_none() -> None:
    class Nothing:
        def serialize(self, value: Any, context: SerDesContext) -> None:
            return None

        def deserialize(self, data: str, context: SerDesContext) -> Any:
            raise AssertionError("nothing stored, nothing to decode")

    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        seen.append(await ctx.step(lambda _: "dropped", config=StepConfig(serdes=Nothing())))
        await ctx.wait(seconds=1)

    runner = LocalRunner(handler)
    assert (await runner.run()).status == "SUCCEEDED"
    assert seen == [None, None]
    assert step_payloads(runner) == [None]


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None
