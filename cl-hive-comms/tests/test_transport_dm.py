"""NIP-17 / NIP-44 v2 private messages: round trips, every authentication check, the payload envelope, NIP-04,
and fuzzing of the decoders (they may only accept a well-formed message or raise InboundRejected)."""
from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nostr_sdk import (Event, EventBuilder, Keys, Kind, Nip44Version, Tag, Timestamp, nip04_encrypt, nip44_decrypt,
                       nip44_encrypt)

from cl_hive_comms import dm
from cl_hive_comms.transport_errors import BadRecipient, InboundRejected, PayloadTooLarge
from transport_helpers import make_wrap

ALICE, BOB, CAROL = Keys.generate(), Keys.generate(), Keys.generate()


def now() -> int:
    """The receiver's clock, read when a test runs (a module constant goes stale in a long run)."""
    return int(time.time())


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rejected(reason: str, fn, *args) -> None:
    with pytest.raises(InboundRejected) as info:
        fn(*args)
    assert info.value.reason == reason, info.value.message


def rumor_json(author: Keys, kind: int = 14, content: str = "hi", tags=None, created_at: int | None = None, **extra) -> str:
    created_at = now() if created_at is None else created_at
    tags = tags if tags is not None else [["p", BOB.public_key().to_hex()]]
    data = {"pubkey": author.public_key().to_hex(), "created_at": created_at, "kind": kind, "tags": tags,
            "content": content, **extra}
    return json.dumps(data)


# ---- round trips -----------------------------------------------------------------------------------
def test_text_dm_round_trip_authenticates_the_seal_signer():
    wrap, rumor_id = dm.build_text_dm(ALICE, BOB.public_key(), "hello bob 🐝")
    rumor = dm.open_gift_wrap(BOB, wrap, now())
    assert (rumor.id, rumor.sender, rumor.kind, rumor.content) == (rumor_id, ALICE.public_key().to_hex(), 14,
                                                                   "hello bob 🐝")
    assert rumor.protocol == "nip17" and rumor.outer_id == wrap.id().to_hex()


def test_the_wrap_hides_sender_and_content():
    """F2: real NIP-44 v2 gift wraps, not base64: the public event names only the recipient, is signed by a
    one-time key, and its content decrypts only with the recipient's key."""
    wrap, _ = dm.build_text_dm(ALICE, BOB.public_key(), "the secret plan")
    public = json.loads(wrap.as_json())
    assert public["kind"] == 1059 and public["pubkey"] != ALICE.public_key().to_hex()
    assert public["tags"] == [["p", BOB.public_key().to_hex()]]
    assert "secret plan" not in wrap.as_json()
    for attempt in (lambda: __import__("base64").b64decode(public["content"]).decode("utf-8"),
                    lambda: nip44_decrypt(CAROL.secret_key(), wrap.author(), public["content"])):
        try:
            assert "secret plan" not in attempt()
        except Exception:
            pass
    seal = Event.from_json(nip44_decrypt(BOB.secret_key(), wrap.author(), public["content"]))
    assert seal.kind().as_u16() == 13 and seal.author().to_hex() == ALICE.public_key().to_hex()
    assert "secret plan" not in seal.as_json()


def test_payload_round_trip_and_channel():
    payload = os.urandom(1000)
    wrap, rumor_id = dm.build_payload_dm(ALICE, BOB.public_key(), payload, dm.CHANNEL_HIVE)
    rumor = dm.open_gift_wrap(BOB, wrap, now())
    assert rumor.kind == dm.PAYLOAD_KIND and rumor.id == rumor_id
    assert dm.decode_payload(rumor) == (dm.CHANNEL_HIVE, payload)


def test_largest_payload_fits_and_larger_is_refused_clearly():
    wrap, _ = dm.build_payload_dm(ALICE, BOB.public_key(), os.urandom(dm.MAX_PAYLOAD_BYTES), dm.CHANNEL_PAYLOAD)
    assert dm.decode_payload(dm.open_gift_wrap(BOB, wrap, now()))[1].__len__() == dm.MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLarge) as info:
        dm.build_payload_dm(ALICE, BOB.public_key(), os.urandom(dm.MAX_PAYLOAD_BYTES + 1), dm.CHANNEL_PAYLOAD)
    assert info.value.code == 1907
    with pytest.raises(PayloadTooLarge):      # text whose JSON escaping makes it too big for NIP-44
        dm.build_text_dm(ALICE, BOB.public_key(), "\x01" * 20_000)


def test_rewrapping_the_same_rumour_keeps_the_message_id():
    """The message id is the rumour id, so a re-wrapped copy is recognised as the same message (replay store)."""
    w1, id1 = dm.build_text_dm(ALICE, BOB.public_key(), "same", created_at=now())
    w2, id2 = dm.build_text_dm(ALICE, BOB.public_key(), "same", created_at=now())
    assert w1.id().to_hex() != w2.id().to_hex() and id1 == id2
    assert dm.open_gift_wrap(BOB, w1, now()).id == dm.open_gift_wrap(BOB, w2, now()).id == id1


def test_recipient_parsing():
    assert dm.parse_pubkey(BOB.public_key().to_bech32()).to_hex() == BOB.public_key().to_hex()
    assert dm.parse_pubkey(BOB.public_key().to_hex()).to_hex() == BOB.public_key().to_hex()
    for bad in ("", "npub1xyz", "02" + "ab" * 32, "AB" * 32, "zz" * 32, BOB.secret_key().to_bech32()):
        with pytest.raises(BadRecipient):
            dm.parse_pubkey(bad)


# ---- every check of open_gift_wrap -----------------------------------------------------------------
def test_tampered_wrap_fails_signature():
    wrap, _ = dm.build_text_dm(ALICE, BOB.public_key(), "x")
    data = json.loads(wrap.as_json())
    data["content"] = data["content"][:-8] + "AAAAAAA="
    rejected("bad_signature", dm.open_gift_wrap, BOB, Event.from_json(json.dumps(data)), now())
    data = json.loads(wrap.as_json())
    data["sig"] = "00" * 64
    rejected("bad_signature", dm.open_gift_wrap, BOB, Event.from_json(json.dumps(data)), now())


def test_wrap_for_someone_else():
    wrap, _ = dm.build_text_dm(ALICE, CAROL.public_key(), "for carol")
    rejected("not_for_us", dm.open_gift_wrap, BOB, wrap, now())
    # a p tag naming us on a wrap encrypted to someone else does not help either
    forged = make_wrap(ALICE, CAROL.public_key(), rumor_json(ALICE), wrap_tags=[["p", BOB.public_key().to_hex()]])
    rejected("undecryptable", dm.open_gift_wrap, BOB, forged, now())


def test_wrong_outer_kind_and_oversize():
    note = EventBuilder(Kind(1), "x").tags([Tag.parse(["p", BOB.public_key().to_hex()])]).finalize(ALICE)
    rejected("wrong_kind", dm.open_gift_wrap, BOB, note, now())
    big = EventBuilder(Kind(1059), "A" * (dm.MAX_WRAP_CONTENT + 1)).tags(
        [Tag.parse(["p", BOB.public_key().to_hex()])]).finalize(Keys.generate())
    rejected("oversized", dm.open_gift_wrap, BOB, big, now())


def test_sender_cannot_claim_another_author():
    """The authenticated sender is the seal's signer; a rumour claiming another pubkey is refused (S1/S2)."""
    rejected("sender_mismatch", dm.open_gift_wrap, BOB, make_wrap(ALICE, BOB.public_key(), rumor_json(CAROL)), now())


def test_seal_checks():
    rejected("wrong_seal_kind", dm.open_gift_wrap, BOB,
             make_wrap(ALICE, BOB.public_key(), rumor_json(ALICE), seal_kind=1), now())
    rejected("malformed_seal", dm.open_gift_wrap, BOB,
             make_wrap(ALICE, BOB.public_key(), rumor_json(ALICE), seal_tags=[["p", "x"]]), now())
    eph = Keys.generate()
    not_an_event = EventBuilder(Kind(1059), nip44_encrypt(eph.secret_key(), BOB.public_key(), '{"kind":13}',
                                                          Nip44Version.V2)).tags(
        [Tag.parse(["p", BOB.public_key().to_hex()])]).finalize(eph)
    rejected("malformed_seal", dm.open_gift_wrap, BOB, not_an_event, now())
    # a seal whose signature does not verify
    seal = EventBuilder(Kind(13), nip44_encrypt(ALICE.secret_key(), BOB.public_key(), rumor_json(ALICE),
                                                Nip44Version.V2)).finalize(ALICE)
    bad = json.loads(seal.as_json())
    bad["sig"] = "11" * 64
    wrapped = EventBuilder(Kind(1059), nip44_encrypt(eph.secret_key(), BOB.public_key(), json.dumps(bad),
                                                     Nip44Version.V2)).tags(
        [Tag.parse(["p", BOB.public_key().to_hex()])]).finalize(eph)
    rejected("bad_seal_signature", dm.open_gift_wrap, BOB, wrapped, now())


@pytest.mark.parametrize("rumor,reason", [
    (lambda: rumor_json(ALICE, sig="00" * 64), "signed_rumor"),
    (lambda: rumor_json(ALICE, id="00" * 32), "bad_rumor_id"),
    (lambda: rumor_json(ALICE, kind=1), "unsupported_kind"),
    (lambda: rumor_json(ALICE, tags=[["p", CAROL.public_key().to_hex()]]), "not_for_us"),
    (lambda: rumor_json(ALICE, created_at=now() - dm.REPLAY_WINDOW - 10), "stale"),
    (lambda: rumor_json(ALICE, created_at=now() + dm.FUTURE_SKEW + 10), "future"),
    (lambda: rumor_json(ALICE, extra_field=1), "malformed_rumor"),
    (lambda: '{"pubkey": "x", "pubkey": "y"}', "malformed_rumor"),
    (lambda: rumor_json(ALICE).replace('"kind": 14', '"kind": 14.0'), "malformed_rumor"),
    (lambda: "[1, 2]", "malformed_rumor"),
    (lambda: "not json", "malformed_rumor"),
])
def test_rumour_checks(rumor, reason):
    rejected(reason, dm.open_gift_wrap, BOB, make_wrap(ALICE, BOB.public_key(), rumor()), now())


def test_stale_and_future_wraps():
    rumor = rumor_json(ALICE)
    rejected("stale", dm.open_gift_wrap, BOB,
             make_wrap(ALICE, BOB.public_key(), rumor, created_at=now() - dm.REPLAY_WINDOW - 1), now())
    rejected("future", dm.open_gift_wrap, BOB,
             make_wrap(ALICE, BOB.public_key(), rumor, created_at=now() + dm.FUTURE_SKEW + 60), now())


# ---- payload envelope ------------------------------------------------------------------------------
def payload_rumor(content: str, tags) -> dm.Rumor:
    return dm.Rumor("00" * 32, ALICE.public_key().to_hex(), dm.PAYLOAD_KIND, now(), content,
                    tuple(tuple(t) for t in tags), "nip17", "00" * 32, now())


@pytest.mark.parametrize("content,tags", [
    ("AAEC", []),                                              # no channel
    ("AAEC", [["t", "hive-packet"], ["t", "payload"]]),         # two channels
    ("AAEC", [["t", "other"]]),                                 # unknown channel
    ("AAE", [["t", "payload"]]),                                # not canonical base64
    ("AAEC\n", [["t", "payload"]]),
    ("", [["t", "payload"]]),                                   # empty
    ("A" * 50_000, [["t", "payload"]]),                         # oversized
])
def test_payload_envelope_rejects(content, tags):
    rejected("malformed_payload", dm.decode_payload, payload_rumor(content, tags))


# ---- NIP-04 (legacy, only when allowed) ---------------------------------------------------------------
def nip04_event(sender: Keys, recipient: Keys, text: str, created_at: int | None = None) -> Event:
    created_at = now() if created_at is None else created_at
    ct = nip04_encrypt(sender.secret_key(), recipient.public_key(), text)
    return (EventBuilder(Kind(4), ct).tags([Tag.parse(["p", recipient.public_key().to_hex()])])
            .custom_created_at(Timestamp.from_secs(created_at)).finalize(sender))


def test_nip04_decodes_and_authenticates():
    event = nip04_event(ALICE, BOB, "legacy hello")
    rumor = dm.open_nip04(BOB, event, now())
    assert (rumor.sender, rumor.content, rumor.protocol, rumor.id) == (ALICE.public_key().to_hex(), "legacy hello",
                                                                       "nip04", event.id().to_hex())
    rejected("not_for_us", dm.open_nip04, CAROL, event, now())
    rejected("stale", dm.open_nip04, BOB, nip04_event(ALICE, BOB, "old", now() - dm.REPLAY_WINDOW - 5), now())
    forged = json.loads(event.as_json())
    forged["pubkey"] = CAROL.public_key().to_hex()
    rejected("bad_signature", dm.open_nip04, BOB, Event.from_json(json.dumps(forged)), now())


# ---- fuzzing ------------------------------------------------------------------------------------------
def _outcome(fn, *args):
    try:
        return fn(*args)
    except InboundRejected as exc:
        assert exc.code == 1911 and exc.reason
        return None


@FUZZ
@given(st.text(max_size=400))
def test_fuzz_wrap_content(content):
    """Arbitrary (validly signed) wrap content: only InboundRejected, never another exception."""
    eph = Keys.generate()
    wrap = EventBuilder(Kind(1059), content).tags([Tag.parse(["p", BOB.public_key().to_hex()])]).finalize(eph)
    assert _outcome(dm.open_gift_wrap, BOB, wrap, now()) is None


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_seal_json(seal_text):
    """Arbitrary plaintext inside a correctly encrypted wrap (the seal position)."""
    eph = Keys.generate()
    ct = nip44_encrypt(eph.secret_key(), BOB.public_key(), seal_text or " ", Nip44Version.V2)
    wrap = EventBuilder(Kind(1059), ct).tags([Tag.parse(["p", BOB.public_key().to_hex()])]).finalize(eph)
    assert _outcome(dm.open_gift_wrap, BOB, wrap, now()) is None


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=12)


@FUZZ
@given(st.dictionaries(st.sampled_from(["id", "pubkey", "created_at", "kind", "tags", "content", "sig", "x"]),
                       JSONISH, max_size=7), st.booleans())
def test_fuzz_rumour_fields(fields, fill):
    """Rumours with arbitrary field values inside a genuine seal: either a fully valid rumour by the seal's
    signer, or InboundRejected."""
    if fill:   # start from a valid rumour and let hypothesis overwrite some fields
        base = json.loads(rumor_json(ALICE))
        base.update(fields)
        fields = base
    wrap = make_wrap(ALICE, BOB.public_key(), json.dumps(fields) or "{}")
    rumor = _outcome(dm.open_gift_wrap, BOB, wrap, now())
    if rumor is not None:
        assert rumor.sender == ALICE.public_key().to_hex() and rumor.kind in dm.RUMOR_KINDS
        assert ["p", BOB.public_key().to_hex()] in [list(t) for t in rumor.tags]


@FUZZ
@given(st.text(max_size=200), st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=3), max_size=4))
def test_fuzz_payload_envelope(content, tags):
    rumor = payload_rumor(content, tags)
    result = _outcome(dm.decode_payload, rumor)
    if result is not None:
        channel, data = result
        assert channel in dm.CHANNELS and data and __import__("base64").b64encode(data).decode() == content


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_nip04_content(content):
    event = EventBuilder(Kind(4), content or "x").tags([Tag.parse(["p", BOB.public_key().to_hex()])]).finalize(ALICE)
    result = _outcome(dm.open_nip04, BOB, event, now())
    assert result is None or result.sender == ALICE.public_key().to_hex()
