"""Operator tools: the ``agent2389`` command (validate, up, health, inject, monitor) and what ``up`` needs
to run a whole stack on one machine."""
