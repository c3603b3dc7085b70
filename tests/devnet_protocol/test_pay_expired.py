"""What the payment reconcile rule (libhive.payment_settle) relies on, the same on the devnet and on real
lightningd: an expired invoice still decodes (its created_at and expiry readable), ``pay`` and ``xpay`` refuse it
(207) before anything is recorded, and ``waitsendpay`` knows no attempt for it (208)."""
from __future__ import annotations

import hashlib
import os
import time

import pytest
from pyln.client import RpcError

from hive_devnet import bolt11


def expired_invoice() -> tuple[str, str]:
    """A regtest invoice of some node, signed two hours ago, valid for one minute."""
    preimage = os.urandom(32)
    payment_hash = hashlib.sha256(preimage).digest()
    inv = bolt11.encode(os.urandom(32), "bcrt", 10_000, timestamp=int(time.time()) - 7200,
                        payment_hash=payment_hash, payment_secret=os.urandom(32), description="expired", expiry=60)
    return inv, payment_hash.hex()


def test_an_expired_invoice_decodes_but_is_refused_before_anything_is_recorded(make_node):
    node = make_node([])
    inv, payment_hash = expired_invoice()
    d = node.rpc.call("decode", {"string": inv})
    assert d["type"] == "bolt11 invoice" and d["valid"] is True and d["payment_hash"] == payment_hash
    assert d["created_at"] + d["expiry"] < time.time() - 7000
    for method, params in (("xpay", {"invstring": inv}), ("pay", {"bolt11": inv})):
        with pytest.raises(RpcError) as e:
            node.rpc.call(method, params)
        assert e.value.error["code"] == 207 and e.value.error["message"].startswith("Invoice expired"), method
    assert node.rpc.call("listpays", {"payment_hash": payment_hash}) == {"pays": []}
    assert node.rpc.call("listsendpays", {"payment_hash": payment_hash}) == {"payments": []}
    with pytest.raises(RpcError) as e:
        node.rpc.call("waitsendpay", {"payment_hash": payment_hash, "timeout": 1})
    assert e.value.error == {"code": 208, "message": f"Never attempted payment part 0 for '{payment_hash}'"}
