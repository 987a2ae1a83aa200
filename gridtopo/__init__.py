"""gridtopo: reconcile marketing and distribution exports into one grid model."""

__version__ = "0.1.0"
