"""Fakes of the outside services agent2389 talks to, for the tests and the benchmarks (bench/): only the LLM
is faked (PROTOCOL.md test policy). Neither tests/ nor bench/ is imported from here."""
