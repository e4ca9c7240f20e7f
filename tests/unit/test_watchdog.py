"""The watchdog's decision (worker/watchdog.py), apart from Celery and Redis."""

from __future__ import annotations

from worker.watchdog import Watch, queue_keys


def test_two_idle_looks_in_a_row_with_messages_waiting_and_a_free_process_act() -> None:
    watch = Watch()
    assert not watch.look(waiting=5, free=True, received=10)  # the first look: a baseline
    assert not watch.look(waiting=5, free=True, received=10)  # strike 1
    assert watch.look(waiting=5, free=True, received=10)  # strike 2: reconnect
    assert watch.strikes == 0  # and start counting again


def test_a_worker_that_receives_is_busy_or_has_nothing_waiting_is_never_stalled() -> None:
    watch = Watch()
    looks = [
        (5, True, 1),  # baseline
        (5, True, 2),  # it received one since: healthy
        (5, False, 2),  # every process busy: it cannot take more
        (0, True, 2),  # nothing waits
        (5, True, 3),
        (5, True, 4),
    ]
    assert not any(watch.look(w, f, r) for w, f, r in looks)


def test_a_healthy_look_between_two_idle_ones_starts_the_count_again() -> None:
    watch = Watch()
    watch.look(3, True, 0)
    assert not watch.look(3, True, 0)  # strike 1
    assert not watch.look(3, True, 1)  # received: back to 0
    assert not watch.look(3, True, 1)  # strike 1
    assert watch.look(3, True, 1)


def test_the_redis_lists_of_a_queue_are_one_per_priority_step_under_the_prefix() -> None:
    assert queue_keys(["urgent"], "of:") == [
        "of:urgent", "of:urgent\x06\x163", "of:urgent\x06\x166", "of:urgent\x06\x169",
    ]  # fmt: skip
