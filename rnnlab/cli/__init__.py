"""The `rnnlab` command line: each command parses arguments and calls a recipe function."""

from .main import cli

__all__ = ["cli"]
