"""What every command runs on: the config schema and its validation, pre-flight checks, checkpoints, inference
and the device choice."""
