"""One module per durable operation; each turns a call into checkpoints and a result."""
