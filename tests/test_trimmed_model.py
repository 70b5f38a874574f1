"""The SDK's trimmed botocore data (``durable_async/_client/data``) against botocore's own.

The client loads a Lambda model cut to the two operations it calls, and endpoints cut to
the services its session uses; if an aiobotocore upgrade changes either operation, these
fail until ``python scripts/trim_lambda_model.py`` regenerates the files.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.loaders import create_loader
from botocore.model import ServiceModel
from botocore.regions import EndpointResolver

from durable_async._client import _loader
from durable_async._client._loader import TrimmedLambdaLoader
from durable_async._client.aiobotocore import AioBotocoreClient, sdk_session

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "trim_lambda_model.py"
OPERATIONS = (
    "CheckpointDurableExecution",
    "GetDurableExecutionState",
    "SendDurableExecutionCallbackSuccess",
    "SendDurableExecutionCallbackFailure",
    "SendDurableExecutionCallbackHeartbeat",
)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trim_lambda_model", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shape_tree(shape: Any, seen: frozenset[str] = frozenset()) -> Any:
    """A shape as plain data: its type, serialization, metadata and members, recursively."""
    if shape is None:
        return None
    node: dict[str, Any] = {
        "name": shape.name,
        "type": shape.type_name,
        "serialization": shape.serialization,
        "metadata": {k: v for k, v in shape.metadata.items() if k != "documentation"},
    }
    if shape.name in seen:
        return node
    seen = seen | {shape.name}
    if shape.type_name == "structure":
        node["members"] = {k: _shape_tree(v, seen) for k, v in shape.members.items()}
    elif shape.type_name == "list":
        node["member"] = _shape_tree(shape.member, seen)
    elif shape.type_name == "map":
        node["key"] = _shape_tree(shape.key, seen)
        node["value"] = _shape_tree(shape.value, seen)
    return node


def _operation_tree(model: ServiceModel, name: str) -> Any:
    op = model.operation_model(name)
    return {
        "http": op.http,
        "input": _shape_tree(op.input_shape),
        "output": _shape_tree(op.output_shape),
        "errors": sorted(str(e.name) for e in op.error_shapes),
        "errors_tree": [_shape_tree(e) for e in sorted(op.error_shapes, key=lambda e: e.name)],
    }


def test_shipped_files_are_what_the_generator_makes_from_installed_botocore() -> None:
    for path, text in _generator().expected_files().items():
        assert path.read_text() == text, f"{path} is stale: run scripts/trim_lambda_model.py"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_trimmed_model_has_installed_botocores_shapes_for_the_sdks_operations(
    operation: str,
) -> None:
    full = ServiceModel(create_loader().load_service_model("lambda", "service-2"), "lambda")
    trimmed_data = TrimmedLambdaLoader().load_service_model("lambda", "service-2")
    trimmed = ServiceModel(trimmed_data, "lambda")
    assert trimmed.metadata == full.metadata
    assert _operation_tree(trimmed, operation) == _operation_tree(full, operation)
    assert set(trimmed.operation_names) == set(OPERATIONS)


def test_trimmed_loader_reads_the_sdk_data_and_counts_it_as_builtin() -> None:
    loader = TrimmedLambdaLoader()
    _, path = loader.load_data_with_path("endpoints")
    assert path.startswith(_loader.DATA_DIR)
    assert loader.is_builtin_path(path)
    # Everything else still comes from botocore's own data, e.g. Lambda's endpoint rules.
    rules = loader.load_service_model("lambda", "endpoint-rule-set-1")
    assert rules == create_loader().load_service_model("lambda", "endpoint-rule-set-1")


@pytest.mark.parametrize(
    "region",
    ["us-west-2", "eu-central-1", "cn-north-1", "us-gov-west-1", "us-iso-east-1", "xx-new-1"],
)
@pytest.mark.parametrize("service", ["lambda", "sts", "sso"])
def test_trimmed_endpoints_resolve_like_botocores(region: str, service: str) -> None:
    full = EndpointResolver(create_loader().load_data("endpoints"), uses_builtin_data=True)
    trimmed_data = TrimmedLambdaLoader().load_data("endpoints")
    trimmed = EndpointResolver(trimmed_data, uses_builtin_data=True)
    assert trimmed.construct_endpoint(service, region) == full.construct_endpoint(service, region)


@pytest.mark.parametrize("region", ["us-west-2", "cn-north-1", "us-gov-west-1"])
@pytest.mark.anyio
async def test_sdk_client_resolves_the_same_endpoint_as_a_plain_aiobotocore_client(
    region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobotocore.session import get_session

    for key, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_LAMBDA", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    sdk = AioBotocoreClient(region_name=region)
    try:
        ours = await sdk._lambda()
        async with get_session().create_client("lambda", region_name=region) as plain:
            assert ours.meta.endpoint_url == plain.meta.endpoint_url
            assert ours.meta.region_name == plain.meta.region_name
            assert ours.meta.partition == plain.meta.partition
            assert ours._service_model.signing_name == plain._service_model.signing_name
    finally:
        await sdk.aclose()


def test_sdk_session_loads_through_the_trimmed_loader() -> None:
    assert isinstance(sdk_session().get_component("data_loader"), TrimmedLambdaLoader)


async def _noop_handler(event: object, ctx: object) -> None:
    return None


@pytest.mark.parametrize("in_lambda", [True, False])
def test_default_client_is_prepared_at_handler_import_only_inside_lambda(
    in_lambda: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from durable_async import durable_execution
    from durable_async._client import aiobotocore as backend

    monkeypatch.setattr(backend, "_sdk_session", None)
    if in_lambda:
        monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    else:
        monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    durable_execution(_noop_handler)
    assert (backend._sdk_session is not None) is in_lambda


def test_a_handler_with_its_own_client_prepares_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from durable_async import durable_execution
    from durable_async._client import aiobotocore as backend
    from durable_async.testing import MemoryBackend

    monkeypatch.setattr(backend, "_sdk_session", None)
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    durable_execution(client=MemoryBackend())(_noop_handler)
    assert backend._sdk_session is None
