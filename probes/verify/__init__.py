"""The real models in process (`dgprofile verify` with transformers): checkpoints or random weights, generation
timed draft by draft and token by token."""
