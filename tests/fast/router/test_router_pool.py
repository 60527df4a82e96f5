"""Worker bookkeeping: least in-flight selection, eviction after N failures, re-admission, policies."""

from __future__ import annotations

import pytest
from miles_core.router.pool import WorkerPool, normalize_worker_url

A, B, C = "http://127.0.0.1:1001", "http://127.0.0.1:1002", "http://127.0.0.1:1003"


def pool_of(*urls: str, **kwargs) -> WorkerPool:
    pool = WorkerPool(**kwargs)
    for url in urls:
        pool.add(url)
    return pool


@pytest.mark.parametrize("raw,url", [("127.0.0.1:8000", "http://127.0.0.1:8000"),
                                     ("http://h:1/", "http://h:1"), ("https://h:1", "https://h:1")])
def test_worker_urls_are_normalized(raw, url):
    assert normalize_worker_url(raw) == url


@pytest.mark.parametrize("bad", ["ftp://h:1", "http://h:1/generate", "http://"])
def test_bad_worker_urls_are_refused(bad):
    with pytest.raises(ValueError, match="http://host:port"):
        normalize_worker_url(bad)


def test_adding_twice_keeps_one_worker_and_remove_forgets_it():
    pool = pool_of(A, A + "/", B)
    assert pool.urls() == [A, B]
    assert pool.remove(A) and not pool.remove(A) and pool.urls() == [B]


def test_least_in_flight_picks_the_idlest_then_the_least_used():
    pool = pool_of(A, B, C)
    first = pool.select()
    pool.acquire(first)
    second = pool.select()
    pool.acquire(second)
    third = pool.select()
    assert len({first.url, second.url, third.url}) == 3  # spread while all are equally busy
    pool.acquire(third)
    pool.release(second)
    assert pool.select().url == second.url  # now the idlest
    assert pool.select(exclude=[second.url]).in_flight == 1


def test_eviction_after_consecutive_failures_and_readmission_on_success():
    pool = pool_of(A, B, failure_threshold=3, success_threshold=2)
    assert pool.record_check(A, False, "boom") is None
    assert pool.record_check(A, True) is None  # a success resets the failure count
    assert [pool.record_check(A, False, "boom") for _ in range(3)] == [None, None, "evicted"]
    assert [w.url for w in pool.healthy()] == [B] and pool.get(A).last_error == "boom"
    assert all(pool.select().url == B for _ in range(5))
    assert pool.record_check(A, True) is None  # one success is not enough with success_threshold=2
    assert pool.record_check(A, True) == "readmitted"
    assert pool.get(A).healthy and pool.get(A).evictions == 1 and pool.get(A).last_error is None


def test_an_unreachable_worker_is_evicted_at_once():
    pool = pool_of(A, B, failure_threshold=3)
    assert pool.mark_unreachable(A, "ConnectError") == "evicted"
    assert pool.mark_unreachable(A, "ConnectError") is None  # already out
    assert pool.select().url == B and pool.record_check(A, True) == "readmitted"


def test_no_healthy_worker_selects_none():
    pool = pool_of(A, failure_threshold=1)
    pool.record_check(A, False, "down")
    assert pool.select() is None and pool_of().select() is None


def test_round_robin_random_and_power_of_two_only_pick_healthy_workers():
    rr = pool_of(A, B, C, policy="round_robin")
    assert len({rr.select().url for _ in range(3)}) == 3
    for policy, expected in (("random", {A, C}), ("power_of_two", {A})):
        pool = pool_of(A, B, C, policy=policy, seed=0, failure_threshold=1)
        pool.record_check(B, False, "down")
        assert {pool.select().url for _ in range(50)} == expected  # power_of_two: A and C idle, A first


def test_power_of_two_prefers_the_less_busy_of_two():
    pool = pool_of(A, B, policy="power_of_two", seed=0)
    busy = pool.get(A)
    for _ in range(5):
        pool.acquire(busy)
    assert all(pool.select().url == B for _ in range(10))


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="least_in_flight"):
        WorkerPool(policy="cache_aware")
