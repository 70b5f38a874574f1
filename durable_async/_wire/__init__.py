"""Wire models and the converter that owns their JSON shape."""
