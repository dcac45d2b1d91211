"""cyclesem: CycleGAN style transfer + semantic segmentation for domain adaptation."""

__version__ = "0.1.0"
