"""``durable-async``: run, inspect, answer and replay durable workflows from a terminal.

Kept out of ``durable_async``'s imports (cold starts never pay for it): only the console
script and ``python -m durable_async`` load it, and each command imports what it needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    from durable_async.testing._sqlite import DEFAULT_STORE

    parser = argparse.ArgumentParser(
        prog="durable-async",
        description="Run and inspect AWS Lambda durable functions locally (or on AWS).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def store(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--store",
            default=DEFAULT_STORE,
            metavar="PATH",
            help=f"the local SQLite store (default: ./{DEFAULT_STORE})",
        )

    run = commands.add_parser("run", help="run a workflow on the local backend")
    run.add_argument("target", metavar="FILE.py:handler")
    run.add_argument("--input", default=None, metavar="JSON", help="the execution's input")
    run.add_argument(
        "--real-time",
        action="store_true",
        help="wait out waits and retries on the wall clock (default: skip time)",
    )
    run.add_argument("--json", action="store_true", help="print the history as JSON")
    store(run)

    history = commands.add_parser("history", help="render a saved history")
    history.add_argument(
        "file",
        metavar="FILE.json",
        help="`run --json` output, or a GetDurableExecutionState/History response",
    )

    replay = commands.add_parser(
        "replay", help="replay a recorded history against the current code"
    )
    replay.add_argument("target", metavar="FILE.py:handler")
    replay.add_argument(
        "files", nargs="+", metavar="HISTORY.json", help="one or more recorded histories"
    )

    callback = commands.add_parser("callback", help="answer a callback and resume its workflow")
    callback.add_argument("action", choices=["succeed", "fail", "heartbeat"])
    callback.add_argument("callback_id", metavar="CALLBACK_ID")
    callback.add_argument(
        "payload",
        nargs="?",
        default=None,
        metavar="PAYLOAD",
        help="succeed: the result (usually JSON); fail: a message or an ErrorObject JSON",
    )
    callback.add_argument("--type", dest="error_type", default=None, help="fail: error type")
    callback.add_argument("--aws", action="store_true", help="send it to AWS instead")
    store(callback)

    listing = commands.add_parser("list", help="list executions")
    listing.add_argument("--aws", action="store_true", help="list executions on AWS")
    listing.add_argument("--function", default=None, help="--aws: the function's name or ARN")
    store(listing)

    show = commands.add_parser("show", help="show one execution's history")
    show.add_argument("execution", metavar="ID", help="an ARN, or the end of a local one")
    show.add_argument("--aws", action="store_true", help="read it from AWS")
    show.add_argument("--json", action="store_true", help="print the history as JSON")
    store(show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status (0 ok, 1 the workflow failed, 2 bad usage)."""
    args = _parser().parse_args(argv)
    from durable_async.cli._commands import CliError, dispatch

    try:
        return dispatch(args)
    except CliError as error:
        print(f"durable-async: error: {error}", file=sys.stderr)
        return 2
