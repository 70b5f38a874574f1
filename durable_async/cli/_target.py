"""Loading ``FILE.py:handler``: the workflow to run and the targets of its ``ctx.invoke``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from durable_async._entry import DurableHandler


class TargetError(ValueError):
    """``FILE.py:handler`` that does not name a durable handler."""


def split_target(spec: str) -> tuple[Path, str]:
    """The file (absolute) and attribute of ``FILE.py:handler``."""
    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name.isidentifier():
        msg = f"expected FILE.py:handler, got {spec!r}"
        raise TargetError(msg)
    path = Path(file).resolve()
    if not path.is_file():
        msg = f"no such file: {file}"
        raise TargetError(msg)
    return path, name


def load_target(spec: str) -> tuple[DurableHandler[Any], dict[str, DurableHandler[Any]], str]:
    """The handler, every durable handler of its module by name, and the absolute spec.

    The module's other handlers answer ``ctx.invoke("name", ...)`` locally, so a workflow
    that chains to a function defined beside it runs without AWS.
    """
    path, name = split_target(spec)
    # Imported under its file's stem, as Lambda imports ``order_workflow.handler``, so the
    # error types a run records (``order_workflow.PaymentDeclined``) are the ones the
    # deployed function records. A stem that names another module gets a private name.
    module_name = path.stem
    module = sys.modules.get(module_name)
    if module is not None and getattr(module, "__file__", None) != str(path):
        module_name = f"_durable_async_cli_{path.stem}"
        module = sys.modules.get(module_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            msg = f"cannot import {path}"
            raise TargetError(msg)
        module = importlib.util.module_from_spec(loader_spec)
        sys.path.insert(0, str(path.parent))  # the workflow's own sibling imports
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    handler = getattr(module, name, None)
    if not isinstance(handler, DurableHandler):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, DurableHandler))
        what = "nothing" if handler is None else f"a {type(handler).__name__}"
        msg = (
            f"{path.name}:{name} is {what}, not a @durable_execution handler"
            f" (handlers in {path.name}: {', '.join(found) or 'none'})"
        )
        raise TargetError(msg)
    functions = {k: v for k, v in vars(module).items() if isinstance(v, DurableHandler)}
    return handler, functions, f"{path}:{name}"
