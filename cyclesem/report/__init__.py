"""Collecting a sweep of `cyclesem.train` jobs into tables and curves: ``python -m cyclesem.report``."""
