"""GPUs and host CPUs with their catalogues, and the calibration profiles measured on them."""
