"""`agent2389 validate` checks the file tools' config, quotas included, before any worker starts them."""

from pathlib import Path

import pytest

from agent2389.config.agent import FileToolConfig
from tests.agent2389.config.test_config import errors_of, write

AGENT = '[agent]\nid = "notes"\n[llm]\nprovider = "echo"\n[tools]\n'


def test_the_quotas_have_defaults_a_file_can_override(tmp_path: Path) -> None:
    defaults = FileToolConfig()
    assert (defaults.max_files, defaults.max_depth, defaults.max_total_bytes) == (10_000, 16, 100 * 1024 * 1024)
    path = write(tmp_path, AGENT + 'file_write = { impl = "builtin", config = { root = "data", max_files = 50, '
                                   'max_depth = 4, max_total_bytes = 65536 } }\n')
    assert errors_of(path) == []


@pytest.mark.parametrize(("config", "expected"), [
    ('max_files = 0', "tools.file_write.config: max_files: Input should be greater than or equal to 1"),
    ('max_depth = "deep"', "tools.file_write.config: max_depth: Input should be a valid integer"),
    ('max_totl_bytes = 5', "tools.file_write.config: max_totl_bytes: Extra inputs are not permitted"),
])
def test_a_bad_file_tool_config_is_reported_with_its_key(tmp_path: Path, config: str, expected: str) -> None:
    path = write(tmp_path, AGENT + f'file_write = {{ impl = "builtin", config = {{ root = "data", {config} }} }}\n')
    found = errors_of(path)
    assert any(expected in error for error in found), found
