"""MODEL argument -> ModelSpec: the catalogue, config.json adapters, the Hub, safetensors headers, GGUF files."""
