"""The training loop, precision policy, checkpoints and run-directory bookkeeping."""
