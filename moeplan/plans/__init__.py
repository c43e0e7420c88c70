"""What each command computes, as Deployments resolved and evaluated.

estimate, compare, recommend, offload, and the accuracy harness.
"""
