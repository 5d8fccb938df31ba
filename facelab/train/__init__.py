"""Training: losses, optimisers, the loop and its checkpoints."""
