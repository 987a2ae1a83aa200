"""The ``gridtopo`` command line: one module per command group, each a thin click layer that
parses options, calls one library function and prints its result (``--json`` everywhere)."""

from gridtopo.cli.main import main

__all__ = ["main"]
