"""Offences per peer: counted within a window, banned at the limit, tables bounded."""

from __future__ import annotations

import pytest

from spec_kit_runtime.policy.offences import Offences


@pytest.mark.parametrize(("times", "banned", "last_count"), [
    ([0.0] * 4, False, 4),
    ([0.0] * 5, True, 5),
    ([0.0, 1.0, 2.0, 3.0, 4.0], True, 5),  # all within the 10 s window
    ([0.0, 1.0, 2.0, 3.0, 10.5], False, 1),  # the window ran out: counting starts over
    ([0.0, 11.0, 12.0, 13.0, 14.0, 15.0], True, 5),
])
def test_a_peer_is_banned_at_the_limit_within_the_window(
        times: list[float], banned: bool, last_count: int) -> None:
    offences = Offences(limit=5, window=10.0)
    counts = [offences.offend(b"peer", now) for now in times]
    assert counts[-1] == last_count
    assert offences.is_banned(b"peer") is banned
    assert not offences.is_banned(b"other")


def test_peers_are_counted_apart_and_forgotten() -> None:
    offences = Offences(limit=2)
    offences.offend(b"a", 0.0)
    offences.offend(b"b", 0.0)
    assert not offences.is_banned(b"a") and not offences.is_banned(b"b")
    offences.offend(b"a", 0.1)
    assert offences.is_banned(b"a") and not offences.is_banned(b"b")
    offences.forget(b"a")
    assert not offences.is_banned(b"a")


def test_memory_stays_bounded_for_a_stranger_cycling_connections() -> None:
    offences = Offences(limit=2, capacity=100)
    for n in range(10_000):
        peer = n.to_bytes(4, "big")
        offences.offend(peer, 0.0)
        offences.offend(peer, 0.0)
    assert len(offences._banned) == 100 and len(offences._counts) == 0
    assert offences.is_banned((9_999).to_bytes(4, "big"))  # the most recent are kept
    assert not offences.is_banned((0).to_bytes(4, "big"))
