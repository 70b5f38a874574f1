"""Checks of names and identifiers against the service's constraints, before anything is sent."""

from __future__ import annotations

import re

from durable_async._errors import ValidationError

_NAME = re.compile(r"[\x20-\x7e]{1,256}")
_SUB_TYPE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_OPERATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_name(name: str | None) -> str | None:
    """Return ``name`` if the service accepts it (printable ASCII, 1-256 chars).

    ``""`` means "no name" and returns ``None``.
    """
    if name is None or name == "":
        return None
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        msg = f"invalid operation name {name!r}: use 1-256 printable ASCII characters"
        raise ValidationError(msg)
    return name


def validate_sub_type(sub_type: str | None) -> None:
    """Raise unless ``sub_type`` is ``None`` or 1-32 of ``[A-Za-z0-9_-]``."""
    if sub_type is not None and (
        not isinstance(sub_type, str) or _SUB_TYPE.fullmatch(sub_type) is None
    ):
        msg = f"invalid subtype {sub_type!r}: use 1-32 characters from A-Z, a-z, 0-9, '-', '_'"
        raise ValidationError(msg)


def validate_operation_id(operation_id: str) -> None:
    """Raise unless ``operation_id`` matches the service's Id pattern and length."""
    if _OPERATION_ID.fullmatch(operation_id) is None:
        msg = f"invalid operation id {operation_id!r}: 1-64 characters from [A-Za-z0-9_-]"
        raise ValidationError(msg)


_FUNCTION = re.compile(
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
_TENANT = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")


def validate_function_name(name: str) -> str:
    """Return ``name`` if the service accepts it as an invoke target (name, ARN, qualifier)."""
    if not isinstance(name, str) or len(name) > 256 or _FUNCTION.fullmatch(name) is None:
        msg = f"invalid function name {name!r}: give a function name, name:qualifier or ARN"
        raise ValidationError(msg)
    return name


def validate_tenant_id(tenant_id: str | None) -> str | None:
    """Return ``tenant_id`` if the service accepts it (1-256 of ``[a-zA-Z0-9._:/=+-@ ]``)."""
    if tenant_id is not None and (
        not isinstance(tenant_id, str) or _TENANT.fullmatch(tenant_id) is None
    ):
        msg = f"invalid tenant id {tenant_id!r}: 1-256 characters from a-z A-Z 0-9 . _ : / = + - @"
        raise ValidationError(msg)
    return tenant_id
