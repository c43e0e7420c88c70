"""moeplan: VRAM, speed and cost planner for Mixture-of-Experts language models."""

__version__ = "0.1.0"
