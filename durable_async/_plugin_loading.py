"""Which plugins an invocation gets: those registered on the handler, then the environment's.

``DURABLE_EXECUTION_PLUGINS`` names entry points of AWS's group or ``module:attribute``
references, as AWS's SDK reads it (``plugin_discovery.py``); anything that is neither a
plugin nor a factory is refused when the handler is decorated, not at its first event.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from durable_async._errors import ValidationError
from durable_async._plugin_types import HOOK_NAMES, is_factory

#: Comma-separated plugin names (entry points of ``PLUGIN_ENTRY_POINT_GROUP``) or
#: ``module:attribute`` references, each naming a plugin factory or a plugin instance.
PLUGIN_ENVIRONMENT_VARIABLE = "DURABLE_EXECUTION_PLUGINS"
#: The entry-point group AWS's SDK discovers plugin factories in.
PLUGIN_ENTRY_POINT_GROUP = "aws_durable_execution.plugins"

_logger = logging.getLogger("durable_async.plugins")


class PluginLoadError(ValidationError):
    """A configured plugin could not be loaded or is not a plugin or factory."""

    __module__ = "durable_async"


def _check_entry(value: object, where: str) -> object:
    if isinstance(value, type) and not is_factory(value):
        msg = (
            f"{where}: {value.__qualname__} is a class; register an instance of it "
            "(a plugin, or a factory with create_plugin(info))"
        )
        raise PluginLoadError(msg)
    if not is_factory(value) and not any(callable(getattr(value, h, None)) for h in HOOK_NAMES):
        msg = (
            f"{where}: {value!r} is neither a plugin (no on_* hook method) nor a plugin "
            "factory (no create_plugin method)"
        )
        raise PluginLoadError(msg)
    return value


def _parse_names(raw: str | None) -> list[str]:
    if raw is None or not raw.strip():
        return []
    names = [name.strip() for name in raw.split(",")]
    if not all(names):
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE} must hold non-empty, comma-separated names"
        raise PluginLoadError(msg)
    if len(set(names)) != len(names):
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE} names a plugin twice: {raw!r}"
        raise PluginLoadError(msg)
    return names


def _resolve_name(name: str) -> object:
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except Exception as exc:
            msg = f"{PLUGIN_ENVIRONMENT_VARIABLE}: cannot load {name!r}: {exc!r}"
            raise PluginLoadError(msg) from exc
        return target
    from importlib import metadata  # only when a plugin is named by entry point: cold start

    found = [ep for ep in metadata.entry_points(group=PLUGIN_ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        msg = (
            f"{PLUGIN_ENVIRONMENT_VARIABLE}: no plugin named {name!r} in entry-point group "
            f"{PLUGIN_ENTRY_POINT_GROUP!r} (or use a module:attribute reference)"
        )
        raise PluginLoadError(msg)
    if len(found) > 1:
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE}: several entry points are named {name!r}"
        raise PluginLoadError(msg)
    try:
        return found[0].load()
    except Exception as exc:
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE}: cannot load {name!r} ({found[0].value}): {exc!r}"
        raise PluginLoadError(msg) from exc


def load_plugins(
    explicit: Iterable[object] | None, environment: Mapping[str, str] | None = None
) -> tuple[object, ...]:
    """The registered plugins and factories: ``explicit`` ones, then the environment's.

    An entry named in the environment that is already registered explicitly (the same
    object) is skipped. Raises ``PluginLoadError`` for anything that cannot be loaded.
    """
    entries = [_check_entry(e, f"plugins[{i}]") for i, e in enumerate(explicit or ())]
    env = os.environ if environment is None else environment
    for name in _parse_names(env.get(PLUGIN_ENVIRONMENT_VARIABLE)):
        entry = _check_entry(_resolve_name(name), f"{PLUGIN_ENVIRONMENT_VARIABLE} {name!r}")
        if any(entry is e for e in entries):
            _logger.warning("plugin %r is already registered; not adding it again", name)
            continue
        entries.append(entry)
    return tuple(entries)
