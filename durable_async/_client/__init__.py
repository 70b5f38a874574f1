"""Backends of the durable-execution API: the contract and its implementations."""
