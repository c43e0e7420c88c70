"""What a model is and what a token costs: the spec, the layer list, tensors, parameters, FLOPs.

Knows no GPU, engine or file.
"""
