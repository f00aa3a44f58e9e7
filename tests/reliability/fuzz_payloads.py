"""Hostile input messages for the intake fuzz (scenario 8), as hypothesis strategies.

Every payload is bytes, as it arrives from the broker: random bytes, JSON nested past any parser's
patience, envelopes with a wrong type in any field, Unicode edge cases (lone surrogates, NUL,
bidi overrides, invalid UTF-8), wildcards and slashes in ids, and messages 256 KiB minus one,
exactly, and plus one.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

LIMIT = 262144
FIELDS = ("task_id", "conversation_id", "topic", "instruction", "input", "next")

EDGE_TEXT = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e\u2066evil", "\ufeff", "\U0001d54f\U0001d536",
             "e\u0301", "\u0000" * 3, "+", "#", "/", "a/b", "a+b", "c#", "//", "..", "%2F", "\\", "\n", "💥" * 50,
             "a" * 257, "' OR 1=1 --", "${jndi:ldap://x}", "<script>", "../../etc/passwd", "NaN", "null"]
# Lone surrogates included: JSON escapes ("\ud800") decode to them, and they cannot be encoded as UTF-8.
any_text = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(EDGE_TEXT)
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | any_text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(any_text, inner, max_size=4), max_leaves=12)


def uuid_texts() -> st.SearchStrategy[str]:
    return st.builds(lambda: str(uuid.uuid4())) | st.sampled_from(
        [str(uuid.uuid4()).upper(), "{" + str(uuid.uuid4()) + "}", str(uuid.uuid4()).replace("-", ""),
         "00000000-0000-0000-0000-000000000000", "not-a-uuid", str(uuid.uuid4()) + "x"])


def conversation_ids() -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12) | any_text


def topics(agent_id: str) -> st.SearchStrategy[str]:
    good = f"/control/agents/{agent_id}/input"
    return st.sampled_from([good, good.lstrip("/"), f"//control//agents/{agent_id}/input/", good + "/",
                            f"/control/agents/{agent_id}/status", "/control/agents/+/input", "#",
                            f"/control/agents/{agent_id}x/input"]) | any_text


def next_chains(depth: int, next_topic: str) -> dict[str, Any] | None:
    chain: dict[str, Any] | None = None
    for _ in range(depth):
        chain = {"topic": next_topic, "instruction": "then", "input": None, "next": chain}
    return chain


@st.composite
def envelopes(draw: st.DrawFn, agent_id: str, next_topic: str) -> dict[str, Any]:
    """A task envelope, mostly valid, with any field wrong, missing or strange."""
    body: dict[str, Any] = {
        "task_id": draw(uuid_texts()),
        "conversation_id": draw(conversation_ids()),
        "topic": draw(st.just(f"/control/agents/{agent_id}/input") | topics(agent_id)),
        "instruction": draw(st.none() | any_text),
        "input": draw(st.dictionaries(any_text, json_values, max_size=3) | any_text),
        "next": draw(st.none() | st.integers(1, 20).map(lambda d: next_chains(d, next_topic))),
    }
    for field in draw(st.sets(st.sampled_from(FIELDS), max_size=2)):
        if draw(st.booleans()):
            del body[field]
        else:
            body[field] = draw(json_values)
    if draw(st.booleans()):
        body[draw(any_text)] = draw(json_values)  # unknown fields are ignored, not fatal
    return body


def encode(document: Any, ascii_only: bool) -> bytes:
    # surrogatepass: a lone surrogate becomes the invalid UTF-8 a hostile client can send.
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def sized(draw: st.DrawFn, agent_id: str, next_topic: str) -> bytes:
    """A valid-looking envelope padded to the size limit, one byte under it, or one byte over."""
    body = draw(envelopes(agent_id, next_topic))
    target = LIMIT + draw(st.sampled_from([-1, 0, 1]))
    body["instruction"] = ""
    padding = target - len(encode(body, ascii_only=True))
    body["instruction"] = "x" * max(0, padding)
    return encode(body, ascii_only=True)


@st.composite
def deep_json(draw: st.DrawFn, agent_id: str) -> bytes:
    """Nesting far past the recursion limit, as the whole message or inside an otherwise valid task."""
    # Not near the recursion limit (1000): there json.loads succeeds or fails with the caller's stack depth,
    # so the test's prediction and the bridge's thread could disagree on the very same message.
    depth = draw(st.integers(200, 700) | st.integers(1_300, 120_000))
    nested = b"[" * depth + b"]" * depth if draw(st.booleans()) else b'{"a":' * depth + b"1" + b"}" * depth
    if not draw(st.booleans()):
        return nested
    head = {"task_id": str(uuid.uuid4()), "conversation_id": "deep", "topic": f"/control/agents/{agent_id}/input"}
    return encode(head, ascii_only=True)[:-1] + b',"input":{"deep":' + nested + b"}}"


def payloads(agent_id: str, next_topic: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=512),
        st.builds(encode, envelopes(agent_id, next_topic), st.booleans()),
        st.builds(encode, json_values, st.booleans()),
        deep_json(agent_id),
        sized(agent_id, next_topic),
    )
