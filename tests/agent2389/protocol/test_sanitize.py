import string

from hypothesis import given, settings
from hypothesis import strategies as st

from agent2389.protocol.sanitize import MAX_CHARS, environment_secrets, sanitize_error_message

secret_text = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=8, max_size=60)


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none()))
def test_the_sanitizer_never_raises_and_never_exceeds_the_cap(value: object) -> None:
    cleaned = sanitize_error_message(value)
    assert 0 < len(cleaned) <= MAX_CHARS
    cleaned.encode("utf-8")


@settings(max_examples=300)
@given(st.text(max_size=300), secret_text, st.text(max_size=300))
def test_an_injected_secret_never_survives(before: str, secret: str, after: str) -> None:
    cleaned = sanitize_error_message(before + secret + after, secrets=[secret])
    assert secret not in cleaned


def test_stack_traces_are_removed() -> None:
    text = 'Traceback (most recent call last):\n  File "/app/workers/x.py", line 3, in f\nValueError: boom'
    cleaned = sanitize_error_message(text)
    assert "Traceback" not in cleaned and "line 3" not in cleaned and "boom" in cleaned


def test_paths_hosts_and_urls_are_removed() -> None:
    cleaned = sanitize_error_message(
        "cannot open /etc/agent/secret.toml on db.internal.example.com (10.2.3.4:5432) via https://x.io/a?k=1"
    )
    for leaked in ("/etc/agent", "example.com", "10.2.3.4", "https://"):
        assert leaked not in cleaned


def test_keys_tokens_and_passwords_are_removed() -> None:
    cleaned = sanitize_error_message(
        "auth failed: api_key=abc123xyz password: hunter2hunter Authorization: Bearer eyJhbGciOiJIUzI1 "
        "sk-ant-api03-AbCdEfGhIjKlMnOp"
    )
    for leaked in ("abc123xyz", "hunter2hunter", "eyJhbGciOiJIUzI1", "sk-ant-api03"):
        assert leaked not in cleaned


def test_a_long_message_is_cut_to_the_cap() -> None:
    assert len(sanitize_error_message("word " * 1000)) == MAX_CHARS


def test_plain_human_messages_are_kept() -> None:
    assert sanitize_error_message("the tool took longer than 30 s") == "the tool took longer than 30 s"


def test_secrets_come_from_the_named_environment_variables() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-ant-12345678", "SHORT": "ab"}
    assert environment_secrets(["ANTHROPIC_API_KEY", "SHORT", "UNSET"], env) == ["sk-ant-12345678"]
