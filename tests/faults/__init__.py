"""Fault injection between the SDK and dex-local-runner (see ``proxy``)."""
