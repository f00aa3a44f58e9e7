"""Shared core of agent2389: the 2389 protocol, agent configuration, settings and logging."""

__version__ = "0.1.0"
