"""Fakes of the outside services agent2389 talks to: only the LLM is faked (PROTOCOL.md test policy)."""
