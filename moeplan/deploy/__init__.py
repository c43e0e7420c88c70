"""One deployment: engines, the Deployment and its resolution, memory, KV, speed, cost, offload, results, evaluate."""
