"""Redaction of secrets from text the SDK puts in errors and log records.

A checkpoint token lets its holder write to the execution, a callback ID lets anyone
complete that callback, and AWS credentials speak for the function. Transport errors
quote them freely: botocore's network errors carry the request URL (with the checkpoint
token in ``GetDurableExecutionState``'s query string) and its parse errors carry the
response body (callback IDs, payloads). Error messages end up in Lambda's error output
and in the execution's history, so every message built from a transport error passes
through ``redact`` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"

#: A URL's query string: everything after ``?`` up to a quote, space or bracket.
_QUERY = re.compile(r"(https?://[^\s\"'<>?]*)\?[^\s\"'<>]*")
#: SigV4 parts and AWS access key IDs, wherever they appear.
_SIGV4 = re.compile(
    r"(?i)((?:X-Amz-Security-Token|X-Amz-Signature|X-Amz-Credential|Credential|Signature|"
    r"CheckpointToken|CallbackId)[\"']?\s*[=:]\s*[\"']?)[^\s\"',&}]+"
)
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
#: botocore's parse errors append the raw response body: it may hold callback IDs.
_BODY = re.compile(r"(?is)(response body:?)\s*.*$")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with query strings, SigV4 parts, response bodies and ``secrets`` removed.

    ``secrets`` are matched verbatim and percent-encoded (as they appear in a URL).
    """
    text = _QUERY.sub(rf"\1?{REDACTED}", text)
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue  # a tiny "secret" would blank out ordinary words
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, REDACTED)
    text = _SIGV4.sub(rf"\1{REDACTED}", text)
    text = _ACCESS_KEY.sub(REDACTED, text)
    return _BODY.sub(rf"\1 {REDACTED}", text)
