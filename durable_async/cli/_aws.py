"""``--aws``: ``callback``, ``list`` and ``show`` against the Lambda API via aiobotocore.

Endpoint, region and credentials come from the standard AWS configuration (so
``AWS_ENDPOINT_URL_LAMBDA`` points it at a local runner or a stub).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AsyncExitStack
from typing import Any

from durable_async._wire.converter import to_wire


async def dispatch_aws(args: argparse.Namespace) -> int:
    """Run ``args``' command against AWS.

    What AWS's configuration or the service rejects is a ``CliError`` (one line, exit
    status 2): botocore's own errors while the client is built (no region, an unknown
    profile, an invalid endpoint or retry setting) and while it calls. Anything else
    propagates with its traceback: it is a bug, not a setting to fix.
    """
    from aiobotocore.session import get_session
    from botocore.exceptions import BotoCoreError, ClientError

    from durable_async.cli._commands import CliError

    if args.command == "list" and not args.function:
        msg = "list --aws needs --function NAME (executions are listed per function)"
        raise CliError(msg)
    async with AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(get_session().create_client("lambda"))
        except (BotoCoreError, ValueError) as error:
            # botocore validates its configuration here, some of it with plain ValueErrors
            # ("Invalid endpoint: ..." for a malformed AWS_ENDPOINT_URL_LAMBDA).
            raise CliError(_configuration_error(error)) from error
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


def _configuration_error(error: Exception) -> str:
    """The one-line message for an AWS configuration the Lambda client cannot be built on."""
    from botocore.exceptions import NoRegionError

    message = f"cannot create the Lambda client: {error}"
    if isinstance(error, NoRegionError):
        message += " (set AWS_DEFAULT_REGION, or region in the profile of ~/.aws/config)"
    return message


#: The Lambda API each ``callback`` action calls (its name goes into error messages) and
#: the aiobotocore client's method for it.
_CALLBACK_APIS = {
    "succeed": ("SendDurableExecutionCallbackSuccess", "send_durable_execution_callback_success"),
    "fail": ("SendDurableExecutionCallbackFailure", "send_durable_execution_callback_failure"),
    "heartbeat": (
        "SendDurableExecutionCallbackHeartbeat",
        "send_durable_execution_callback_heartbeat",
    ),
}


async def _callback(client: Any, args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from durable_async.cli._commands import CliError, failure

    callback_id = args.callback_id
    params: dict[str, Any] = {}
    if args.action == "succeed":
        params["Result"] = (args.payload or "").encode("utf-8")
    elif args.action == "fail":
        params["Error"] = to_wire(failure(args.payload, args.error_type))
    api, method = _CALLBACK_APIS[args.action]
    try:
        await getattr(client, method)(CallbackId=callback_id, **params)
    except (ClientError, BotoCoreError) as error:
        # Not chained: botocore's message quotes the request URL, callback ID and all.
        raise CliError(callback_error_message(error, api, callback_id)) from None
    sys.stdout.write(f"sent {args.action} to callback {callback_id}\n")
    return 0


def callback_error_message(error: Exception, api: str, callback_id: str) -> str:
    """The message for a failed callback call, without the callback ID (a bearer token).

    ``CallbackClient``'s translation cuts the ID out, as given and as botocore
    percent-encodes it into the request URL; the SDK's redaction then removes query
    strings and SigV4 parts too.
    """
    from durable_async._client.aiobotocore import _callback_error
    from durable_async._redact import redact

    return redact(str(_callback_error(error, api, callback_id)), (callback_id,))


async def _list(client: Any, args: argparse.Namespace) -> int:
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
