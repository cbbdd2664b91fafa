"""The migrations sensor's fingerprint of a folder listing."""

from __future__ import annotations

from erp_pipelines.automation.sensors import _listing_digest


def test_the_listing_digest_ignores_order_and_sees_every_change():
    listing = {"20250101_init": "aaa", "20250201_add": "bbb"}
    assert _listing_digest(listing) == _listing_digest(dict(reversed(listing.items())))
    assert _listing_digest(listing) != _listing_digest({**listing, "20250201_add": "bbc"})
    assert _listing_digest(listing) != _listing_digest({"20250101_init": "aaa"})
