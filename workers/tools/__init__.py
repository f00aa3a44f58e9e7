"""Tools an agent's LLM may call (PROTOCOL.md §6), each call run in a tool process that can be killed.

Kept free of imports on purpose: ``workers.tools.host`` starts in a fresh interpreter for every tool
process, and everything imported here would slow that start-up down.
"""
