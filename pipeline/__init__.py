"""wqci: a validation pipeline for mailed Linux kernel patch series."""

__version__ = "0.1.0"
