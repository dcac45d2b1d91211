"""Checking a GPU machine: ``python -m cyclesem.gpu_check``."""
