"""Regenerate the trimmed botocore data that ``AioBotocoreClient`` loads.

``python scripts/trim_lambda_model.py`` reads the installed botocore's Lambda service
model and endpoints data and writes, under ``durable_async/_client/data/``:

* ``lambda/2015-03-31/service-2.json``: the model cut down to the operations the SDK
  calls (``CheckpointDurableExecution``, ``GetDurableExecutionState``, and the three
  ``SendDurableExecutionCallback*`` of ``CallbackClient``) and the shapes they reach,
  without documentation. The whole model is ~100 times larger, and parsing
  it was the largest single cost of building the client on a cold start.
* ``endpoints.json``: every partition's metadata but only the services our session makes
  clients for (Lambda, and the credential providers' STS/SSO), instead of all of them.

Run it after raising the aiobotocore/botocore floor; ``tests/test_trimmed_model.py``
fails when the shipped files no longer match the installed botocore.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SERVICE = "lambda"
API_VERSION = "2015-03-31"
OPERATIONS = (
    "CheckpointDurableExecution",
    "GetDurableExecutionState",
    # The external side of callbacks (durable_async.callbacks.CallbackClient), which reuses
    # the same client construction.
    "SendDurableExecutionCallbackSuccess",
    "SendDurableExecutionCallbackFailure",
    "SendDurableExecutionCallbackHeartbeat",
)
#: Services whose endpoints our session may resolve: ours, and the clients botocore's
#: credential providers create (assume-role, web identity, SSO) on the same session.
ENDPOINT_SERVICES = (SERVICE, "sts", "sso", "sso-oidc", "signin")
DATA_DIR = Path(__file__).resolve().parents[1] / "durable_async" / "_client" / "data"


def _strip_docs(node: Any) -> Any:
    """Drop ``documentation`` keys: botocore only uses them for help text."""
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def _shape_refs(node: Any) -> list[str]:
    """Names of the shapes a shape or operation refers to (``{"shape": name}``)."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("shape"), str):
            found.append(node["shape"])
        for value in node.values():
            found.extend(_shape_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_shape_refs(value))
    return found


def trim_service_model(full: dict[str, Any], operations: tuple[str, ...] = OPERATIONS) -> Any:
    """``full`` with only ``operations`` and the shapes they reach, documentation dropped."""
    ops = {name: full["operations"][name] for name in operations}
    keep: set[str] = set()
    pending = _shape_refs(ops)
    while pending:
        name = pending.pop()
        if name not in keep:
            keep.add(name)
            pending.extend(_shape_refs(full["shapes"][name]))
    trimmed = {
        "version": full["version"],
        "metadata": full["metadata"],
        "operations": ops,
        "shapes": {name: full["shapes"][name] for name in sorted(keep)},
    }
    return _strip_docs(trimmed)


def trim_endpoints(full: dict[str, Any], services: tuple[str, ...] = ENDPOINT_SERVICES) -> Any:
    """``full`` endpoints data with every partition kept but only ``services`` in each."""
    partitions = []
    for partition in full["partitions"]:
        kept = {k: v for k, v in partition["services"].items() if k in services}
        partitions.append({**partition, "services": kept})
    return {**full, "partitions": partitions}


def installed(name: str) -> Any:
    """The installed botocore's data file ``name`` (``endpoints``, ``lambda/.../service-2``)."""
    from botocore.loaders import create_loader

    return create_loader().load_data(name)


def dump(data: Any) -> str:
    """Compact, key-sorted JSON: small to parse, stable to diff."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def expected_files() -> dict[Path, str]:
    """What the data directory should hold for the installed botocore."""
    model = trim_service_model(installed(f"{SERVICE}/{API_VERSION}/service-2"))
    return {
        DATA_DIR / SERVICE / API_VERSION / "service-2.json": dump(model),
        DATA_DIR / "endpoints.json": dump(trim_endpoints(installed("endpoints"))),
    }


def main() -> int:
    """Write the files (the generator's whole job)."""
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
