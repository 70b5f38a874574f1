"""``--aws``: ``callback``, ``list`` and ``show`` against the Lambda API via aiobotocore.

Endpoint, region and credentials come from the standard AWS configuration (so
``AWS_ENDPOINT_URL_LAMBDA`` points it at a local runner or a stub).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from durable_async._wire.converter import to_wire


async def dispatch_aws(args: argparse.Namespace) -> int:
    """Run ``args``' command against AWS."""
    from aiobotocore.session import get_session
    from botocore.exceptions import BotoCoreError, ClientError

    from durable_async.cli._commands import CliError

    async with get_session().create_client("lambda") as client:
        try:
            if args.command == "callback":
                return await _callback(client, args)
            if args.command == "list":
                return await _list(client, args)
            return await _show(client, args)
        except ClientError as error:
            info = error.response.get("Error", {})
            msg = f"{info.get('Code', 'error')}: {info.get('Message', error)}"
            raise CliError(msg) from error
        except BotoCoreError as error:
            raise CliError(str(error)) from error


async def _callback(client: Any, args: argparse.Namespace) -> int:
    from durable_async.cli._commands import failure

    callback_id = args.callback_id
    if args.action == "succeed":
        payload = (args.payload or "").encode("utf-8")
        await client.send_durable_execution_callback_success(CallbackId=callback_id, Result=payload)
    elif args.action == "fail":
        error = to_wire(failure(args.payload, args.error_type))
        await client.send_durable_execution_callback_failure(CallbackId=callback_id, Error=error)
    else:
        await client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
    sys.stdout.write(f"sent {args.action} to callback {callback_id}\n")
    return 0


async def _list(client: Any, args: argparse.Namespace) -> int:
    from durable_async.cli._commands import CliError

    if not args.function:
        msg = "list --aws needs --function NAME (executions are listed per function)"
        raise CliError(msg)
    marker: str | None = None
    while True:
        page = await client.list_durable_executions_by_function(
            FunctionName=args.function, **({"Marker": marker} if marker else {})
        )
        for row in page.get("DurableExecutions", ()):
            started = row.get("StartTimestamp")
            when = started.isoformat(timespec="seconds") if started is not None else "?"
            sys.stdout.write(
                f"{row.get('Status', '?'):<9}  {when}  {row.get('DurableExecutionName', '')}  "
                f"{row['DurableExecutionArn']}\n"
            )
        marker = page.get("NextMarker")
        if not marker:
            return 0


async def _show(client: Any, args: argparse.Namespace) -> int:
    from durable_async.testing._history import History

    events: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        page = await client.get_durable_execution_history(
            DurableExecutionArn=args.execution,
            IncludeExecutionData=True,
            **({"Marker": marker} if marker else {}),
        )
        events.extend(page.get("Events", ()))
        marker = page.get("NextMarker")
        if not marker:
            break
    history = History.from_json({"Events": events, "DurableExecutionArn": args.execution})
    if args.json:
        json.dump(history.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{args.execution}\n{history}\n")
    return 0
