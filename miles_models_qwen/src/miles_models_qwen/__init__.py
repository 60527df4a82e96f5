"""miles-models-qwen."""
