"""`make test`'s scheduler overrides a private pytest-xdist method (pinned in constraints.txt): it must still be
there with the same parameters, and it must put the scenarios under load in one group."""

from __future__ import annotations

import inspect

from xdist.scheduler import LoadGroupScheduling

from tests.scheduling import GROUP, UnderLoadInOneWorker


def test_xdists_private_split_scope_still_takes_a_node_id() -> None:
    assert list(inspect.signature(LoadGroupScheduling._split_scope).parameters) == ["self", "nodeid"]


def test_the_scenarios_under_load_share_one_group_and_every_other_test_is_its_own_unit() -> None:
    scheduler = UnderLoadInOneWorker.__new__(UnderLoadInOneWorker)  # no xdist session is needed to split ids
    split = scheduler._split_scope

    assert {split("tests/reliability/test_soak.py::test_x"), split("tests/bench/test_harness.py::test_y"),
            split("tests/e2e/test_up.py::test_z[a]")} == {GROUP}
    assert split("tests/e2e/test_delivery.py::test_w") == "tests/e2e/test_delivery.py::test_w"
