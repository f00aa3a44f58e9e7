import pytest
import redis

from agent2389.state.keys import Keys
from agent2389.state.ledger import CLAIM_TTL_S, DUPLICATE, NEW, PENDING, TaskLedger
from tests.conftest import RedisUnderTest

# The ledger is Lua scripts on plain keys: every test runs on fakeredis (the fast tier) and on the real Redis.


@pytest.fixture
def redis_client(fake_or_real_redis: RedisUnderTest) -> redis.Redis:
    return fake_or_real_redis.client


@pytest.fixture
def key_prefix(fake_or_real_redis: RedisUnderTest) -> str:
    return fake_or_real_redis.prefix


def ledger(redis_client: redis.Redis, key_prefix: str) -> TaskLedger:
    return TaskLedger(redis_client, Keys(key_prefix), ttl_s=60)


def test_the_first_delivery_is_new_and_after_its_enqueue_the_second_is_a_duplicate(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    book = ledger(redis_client, key_prefix)
    assert book.claim("t:1") == NEW
    book.confirm("t:1")
    assert book.claim("t:1") == DUPLICATE


def test_a_delivery_claimed_but_not_yet_queued_makes_the_next_one_wait_not_vanish(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:1")
    assert book.claim("t:1") == PENDING
    assert 0 < redis_client.ttl(Keys(key_prefix).ledger("t:1")) <= CLAIM_TTL_S


def test_a_failed_task_may_be_published_again(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:1")
    book.confirm("t:1")
    book.finish("t:1", failed=True)
    assert book.claim("t:1") == NEW


def test_a_done_task_stays_a_duplicate(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:1")
    book.finish("t:1", failed=False)
    book.confirm("t:1")
    assert book.claim("t:1") == DUPLICATE and book.begin("t:1").finished


def test_an_unclaimed_delivery_is_new_again(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:1")
    book.unclaim("t:1")
    assert book.claim("t:1") == NEW


def test_each_begin_counts_an_attempt_and_sees_the_kept_outcome(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:1")
    first = book.begin("t:1")
    assert (first.attempts, first.outcome, first.finished) == (1, None, False)
    book.keep_outcome("t:1", "answer")
    assert book.begin("t:1").attempts == 2 and book.begin("t:1").outcome == "answer"


def test_ledger_keys_expire(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:1")
    book.confirm("t:1")
    assert 0 < redis_client.ttl(Keys(key_prefix).ledger("t:1")) <= 60


def test_a_batch_of_claims_answers_each_in_order_like_single_claims(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:queued")
    book.confirm("t:queued")
    book.claim("t:failed")
    book.finish("t:failed", failed=True)
    assert book.claim_many(["t:1", "t:queued", "t:failed", "t:2"]) == [NEW, DUPLICATE, NEW, NEW]
    assert book.claim("t:2") == PENDING
    book.confirm_many(["t:1", "t:failed", "t:2"])
    assert [book.state(f) for f in ("t:1", "t:failed", "t:2")] == ["queued"] * 3
    assert 0 < redis_client.ttl(Keys(key_prefix).ledger("t:2")) <= 60


def test_a_batch_of_claims_stops_at_a_delivery_that_must_wait(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:other-bridge")
    assert book.claim_many(["t:1", "t:other-bridge", "t:2"]) == [NEW, PENDING]
    assert book.state("t:2") is None


def test_confirming_a_batch_keeps_what_a_worker_already_recorded(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    assert book.claim_many(["t:1", "t:2"]) == [NEW, NEW]
    book.finish("t:1", failed=False)
    book.confirm_many(["t:1", "t:2"])
    assert (book.state("t:1"), book.state("t:2")) == ("done", "queued")


def test_finishing_forgets_the_kept_outcome(redis_client: redis.Redis, key_prefix: str) -> None:
    book = ledger(redis_client, key_prefix)
    book.claim("t:1")
    book.begin("t:1")
    book.keep_outcome("t:1", "answer")
    book.finish("t:1", failed=False)
    visit = book.begin("t:1")
    assert visit.finished and visit.outcome is None and visit.attempts == 2
