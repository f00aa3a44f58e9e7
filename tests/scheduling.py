"""How `make test` shares the tests between its two pytest-xdist workers (Makefile: ``-n 2 --dist loadgroup``).

Most tests wait on processes and brokers rather than compute, so two workers halve the run on a 2-core
machine. The scenarios that put a whole system under load and time its recovery (tests/reliability,
tests/bench), and the end-to-end tests that start three or more workers under load (importing the LLM SDKs
in three processes at once takes seconds of CPU each), run in one worker, one after the other, never two
at once; every other test goes to whichever worker is free. The group is the largest unit of work, so
xdist hands it out first.

Not the ``xdist_group`` mark: xdist 3.8 applies it by renaming the test's node id, which pytest 9 no
longer allows, so the mark is silently ignored. A scheduler that groups by folder needs neither.
"""

from __future__ import annotations

from xdist.scheduler import LoadGroupScheduling

UNDER_LOAD = ("tests/reliability/", "tests/bench/", "tests/e2e/test_llm_limits_e2e.py", "tests/e2e/test_up.py",
              "tests/e2e/test_routing_load.py")
GROUP = "under-load"


class UnderLoadInOneWorker(LoadGroupScheduling):
    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith(UNDER_LOAD):
            return GROUP
        return super()._split_scope(nodeid)
