"""Search and retrain loops, run folders, checkpoints."""
