"""Dynamic routing of v2 workflows (PROTOCOL.md §9): one router, a small file per strategy."""

from workers.routing.decision import Decision, Directory, RoutingError
from workers.routing.router import Routed, Router, applies

__all__ = ["Decision", "Directory", "Routed", "Router", "RoutingError", "applies"]
