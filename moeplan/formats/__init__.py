"""How weights and KV are stored: weight formats with their capabilities, schemes, ggml types, llama.cpp's mixes."""
