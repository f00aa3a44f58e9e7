import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent2389.protocol.errors import InvalidInputError
from agent2389.protocol.topics import (
    agent_id_from_input_topic,
    canonicalize,
    conversation_topic,
    is_valid_agent_id,
    require_conversation_id,
)

topic_text = st.text(alphabet=st.sampled_from("/abc-_.+#x1"), max_size=40)


def test_canonicalize_follows_the_protocol_example() -> None:
    assert canonicalize("//control//agents/foo/") == "/control/agents/foo"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("control/agents/a/input", "/control/agents/a/input"), ("/a", "/a"), ("", "/"), ("///", "/")],
)
def test_canonicalize_adds_one_leading_slash_and_drops_trailing_ones(raw: str, canonical: str) -> None:
    assert canonicalize(raw) == canonical


@given(topic_text)
def test_canonicalize_is_idempotent(topic: str) -> None:
    once = canonicalize(topic)
    assert canonicalize(once) == once


@given(topic_text)
def test_canonical_topics_have_no_empty_levels(topic: str) -> None:
    canonical = canonicalize(topic)
    assert canonical.startswith("/")
    assert "//" not in canonical
    assert canonical == "/" or not canonical.endswith("/")


@pytest.mark.parametrize("agent_id", ["a", "agent-1", "A.b_c", "x" * 64])
def test_agent_ids_of_letters_digits_dots_dashes_and_underscores_are_valid(agent_id: str) -> None:
    assert is_valid_agent_id(agent_id)


@pytest.mark.parametrize("agent_id", ["", "a b", "a/b", "a+", "#", "ü", "a\x00"])
def test_other_agent_ids_are_invalid(agent_id: str) -> None:
    assert not is_valid_agent_id(agent_id)


@pytest.mark.parametrize("conversation_id", ["a/b", "+", "#", "x\x00", ""])
def test_a_conversation_id_that_would_change_the_topic_shape_is_invalid_input(conversation_id: str) -> None:
    with pytest.raises(InvalidInputError):
        require_conversation_id(conversation_id)


def test_the_conversation_topic_names_conversation_then_agent() -> None:
    assert conversation_topic("c1", "echo") == "/conversations/c1/echo"


def test_the_agent_id_is_read_from_an_input_topic_in_any_spelling() -> None:
    assert agent_id_from_input_topic("control//agents/echo/input/") == "echo"
    assert agent_id_from_input_topic("/control/agents/echo/status") is None
