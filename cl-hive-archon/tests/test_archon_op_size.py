"""The size of a DID operation, measured as the gatekeeper measures it (issue 10, finding 16).

Archon's gatekeeper refuses ``JSON.stringify(operation).length > maxOpBytes`` (64 KiB) on the *signed* operation,
a JavaScript length (UTF-16 code units).  cl-hive-archon measured the operation before its proof was added, in
UTF-8 bytes: an update of 65 526 characters unsigned (65 843 signed) passed its check and was refused.  Here
the boundary is found exactly, and the stand-in gatekeeper (its own code, upstream's rule) agrees on both sides.
"""
from __future__ import annotations

import pytest

from archon_gatekeeper import Invalid, StandInGatekeeper
from cl_hive_archon import operations
from cl_hive_archon.errors import OperationTooLarge
from cl_hive_archon.keys import SigningKey

KEY = SigningKey(bytes.fromhex("3c" * 32))


@pytest.fixture
def agent():
    gk = StandInGatekeeper(registries=("local",))
    did = gk.submit(operations.agent_create(KEY, "local"))
    return gk, did


def signed_update(gk, did, filler: str):
    previd = gk.resolve(did)["didDocumentMetadata"]["versionId"]
    return operations.update(KEY, did, did, previd, {"didDocumentData": {"note": filler}})


def unsigned_size(gk, did, filler: str) -> int:
    previd = gk.resolve(did)["didDocumentMetadata"]["versionId"]
    return operations.op_size({"type": "update", "did": did, "previd": previd,
                               "doc": {"didDocumentData": {"note": filler}}})


def largest_filler(gk, did, char: str = "x") -> str:
    """The longest run of ``char`` whose signed update is exactly at the limit (or just under, for wide chars)."""
    lo, hi = 0, operations.MAX_OP_BYTES
    while lo < hi:                                        # the signed size grows with the filler, monotonically
        mid = (lo + hi + 1) // 2
        try:
            signed_update(gk, did, char * mid)
            lo = mid
        except OperationTooLarge:
            hi = mid - 1
    return char * lo


def test_the_limit_is_on_the_signed_operation(agent):
    gk, did = agent
    filler = largest_filler(gk, did)
    at_limit = signed_update(gk, did, filler)
    assert operations.op_size(at_limit) == operations.MAX_OP_BYTES
    # one more character: refused by us, and by the gatekeeper's rule
    with pytest.raises(OperationTooLarge) as refused:
        signed_update(gk, did, filler + "x")
    assert refused.value.size == operations.MAX_OP_BYTES + 1 and refused.value.code == 1809
    assert "over the gatekeeper's limit of 65536" in refused.value.message
    # the review's case: under the limit before the proof, over it after (the old check let it through)
    assert unsigned_size(gk, did, filler + "x") < operations.MAX_OP_BYTES
    over = {**at_limit, "doc": {"didDocumentData": {"note": filler + "x"}}}
    over = operations.add_proof({k: v for k, v in over.items() if k != "proof"}, KEY, f"{did}#key-1")
    with pytest.raises(Invalid, match="Invalid operation: size"):
        gk.submit(over)
    assert gk.submit(at_limit) is True


def test_the_limit_counts_javascript_characters_not_utf8_bytes(agent):
    gk, did = agent
    accented = largest_filler(gk, did, "é")             # 2 UTF-8 bytes, 1 UTF-16 unit
    op = signed_update(gk, did, accented)
    assert len(operations.jcs.canonical(op)) > operations.MAX_OP_BYTES         # over in UTF-8 bytes...
    assert operations.op_size(op) <= operations.MAX_OP_BYTES                   # ...not in what Archon counts
    assert gk.submit(op) is True
    emoji = largest_filler(gk, did, "\U0001F600")       # 4 UTF-8 bytes, 2 UTF-16 units
    assert operations.op_size(signed_update(gk, did, emoji)) >= operations.MAX_OP_BYTES - 1


def test_a_large_asset_is_refused_before_it_is_signed_off(agent):
    gk, did = agent
    with pytest.raises(OperationTooLarge):
        operations.asset_create(KEY, did, {"blob": "x" * operations.MAX_OP_BYTES}, "local")
