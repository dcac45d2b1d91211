"""The training-step benchmark: ``python -m cyclesem.bench``."""
