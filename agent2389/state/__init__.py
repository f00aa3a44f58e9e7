"""What the processes of a deployment share in Redis: key layout, the delivery ledger, worker presence,
stats and LLM usage, and the one way to connect."""
