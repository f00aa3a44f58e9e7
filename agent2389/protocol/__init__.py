"""The wire contract of PROTOCOL.md: envelopes and responses, topics, error codes, and the sanitizing every
outgoing error message goes through."""
