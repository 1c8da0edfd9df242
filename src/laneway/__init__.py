"""Laneway: run a team's mixed stack of open-weight and closed LLMs."""

__all__ = ["__version__"]

__version__ = "0.1.0"
