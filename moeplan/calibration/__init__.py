"""The torch benchmarks behind ``moeplan calibrate``: a synthetic MoE layer timed on this machine."""
