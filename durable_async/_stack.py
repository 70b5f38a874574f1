"""The stack trace recorded with a failure (``ErrorObject.StackTrace``).

The service stores a stack trace as a list of strings. AWS's SDKs fill it with the origin's
stack one line per entry (their JavaScript SDK splits ``error.stack``; their Python SDK
passes on what a ``DurableOperationError`` carries), so here it is the user's traceback as
Python prints it, one line per entry. Frames of the plumbing that called the user's code
(this SDK, anyio's worker threads, asyncio) are left out: they are the same for every
failure and would crowd out the frames that explain it. Chained exceptions (``raise ... from``
and errors raised while handling another) are included, as Python prints them.
"""

from __future__ import annotations

import os
from types import FrameType, TracebackType

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
#: At most this many chained exceptions are followed (a loop of contexts stops anyway).
_MAX_CHAIN = 8
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _plumbing_dirs() -> tuple[str, ...]:
    dirs = [_PACKAGE_DIR, _STDLIB_DIR]
    try:
        import anyio

        dirs.append(os.path.dirname(os.path.abspath(anyio.__file__)) + os.sep)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - anyio is a dependency
        pass
    return tuple(dirs)


def _user_frames(tb: TracebackType | None, plumbing: tuple[str, ...]) -> TracebackType | None:
    """``tb`` from its first frame that is not plumbing on; None if it has none."""
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(plumbing):
            return tb
        tb = tb.tb_next
    return None


#: Code that attrs and cattrs generate for a class: called on the user's behalf, as the SDK is.
_GENERATED = ("<attrs generated", "<cattrs generated")


def _is_sdk(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) or os.path.basename(filename).startswith(_GENERATED)


def _user_stack(tb: TracebackType, plumbing: tuple[str, ...]) -> list[tuple[FrameType, int]]:
    """The frames of ``tb`` (which starts at user code) to print, with their line numbers.

    The SDK's own frames are left out wherever they are: between two user frames (the SDK
    calling a user's serdes, say) they are the same for every failure. Below the innermost
    user frame, when that frame called into the SDK and the SDK raised (a misuse such as a
    wait under a second, or an invalid config), everything is left out: the user's call is
    the line that explains the failure. A library the user called keeps its frames.
    """
    frames: list[tuple[FrameType, int, str]] = []
    while tb is not None:
        frame = tb.tb_frame
        frames.append((frame, tb.tb_lineno, os.path.abspath(frame.f_code.co_filename)))
        tb = tb.tb_next  # type: ignore[assignment]
    last = max(
        (
            i
            for i, (_, _, name) in enumerate(frames)
            if not name.startswith(plumbing) and not _is_sdk(name)
        ),
        default=len(frames) - 1,
    )
    if last + 1 < len(frames) and _is_sdk(frames[last + 1][2]):
        frames = frames[: last + 1]
    return [(frame, line) for frame, line, name in frames if not _is_sdk(name)]


def user_traceback(error: BaseException) -> TracebackType | None:
    """``error``'s traceback from its first frame of user code on (None if it has none)."""
    return _user_frames(error.__traceback__, _plumbing_dirs())


def stack_lines(error: BaseException) -> tuple[str, ...] | None:
    """The traceback of ``error`` (and what it chains) as lines, or None if there is none.

    Reads source lines through ``linecache``, so it costs a little per failure and
    nothing while operations succeed.
    """
    import traceback

    plumbing = _plumbing_dirs()
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link: str | None = None
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    lines: list[str] = []
    for exc, next_link in reversed(chain):
        frames = _user_frames(exc.__traceback__, plumbing)
        kept = [] if frames is None else _user_stack(frames, plumbing)
        if kept:
            lines.append("Traceback (most recent call last):")
            for entry in traceback.StackSummary.extract(iter(kept)).format():
                # Python 3.11+ underlines the failing expression; the line itself says enough.
                lines.extend(line for line in entry.rstrip("\n").split("\n") if line.strip(" ^~"))
        for entry in traceback.format_exception_only(type(exc), exc):
            lines.extend(entry.rstrip("\n").split("\n"))
        if next_link is not None:
            lines.append(next_link)
    if not any(line.startswith("  File ") for line in lines):
        return None
    return tuple(lines)
