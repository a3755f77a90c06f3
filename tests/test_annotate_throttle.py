"""The workbench's sign-in throttle on a fake clock: lock after the limit, release as failures
leave the window, success clears a key, memory bounded by the number of keys."""

from __future__ import annotations

from extractors.annotate.throttle import SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_after_the_limit_and_releases_with_the_window() -> None:
    clock = Clock()
    t = SignInThrottle(max_failures=3, window_seconds=60, clock=clock)
    for _ in range(2):
        t.failed("user:a")
        clock.now += 10
    assert t.retry_after("user:a") == 0
    t.failed("user:a")  # failures at 1000, 1010, 1020
    assert t.retry_after("user:a") == 41  # the first leaves the window at 1060
    assert t.retry_after("user:b") == 0
    clock.now = 1060
    assert t.retry_after("user:a") == 0


def test_any_locked_key_locks_the_attempt_and_success_clears_one() -> None:
    clock = Clock()
    t = SignInThrottle(max_failures=2, window_seconds=60, clock=clock)
    t.failed("user:a", "addr:x")
    t.failed("user:b", "addr:x")
    assert t.retry_after("user:c", "addr:x") > 0
    assert t.retry_after("user:a", "addr:y") == 0
    t.succeeded("addr:x")
    assert t.retry_after("user:c", "addr:x") == 0


def test_tracked_keys_are_bounded() -> None:
    t = SignInThrottle(max_failures=1, window_seconds=60, max_keys=100, clock=Clock())
    for i in range(1000):
        t.failed(f"addr:{i}")
    assert len(t._failures) == 100
    assert t.retry_after("addr:999") > 0 and t.retry_after("addr:0") == 0
