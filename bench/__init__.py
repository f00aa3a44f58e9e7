"""The benchmark harness: the real stack on the real Redis and a private Mosquitto, timed from outside.

``python -m bench [scenario ...] [--json]``; docs/performance.md has the results and how to read them.
"""
