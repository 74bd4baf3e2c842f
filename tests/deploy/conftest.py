"""The deploy tests' fixtures: the real monitoring stack (see stack_support.py)."""

from stack_support import stack

__all__ = ["stack"]
