#!/usr/bin/env python3
"""Checks the envelope signature test vectors of PROTOCOL.md §4.6.8.

An implementation of §4.6 written from the text alone, sharing no code with proto/vdp_sig: its own
canonical msgpack writer and reader, hashlib's BLAKE2b, and the `cryptography` package's Ed25519.
It reads the canonical field order from the table of §4.1 and the vectors from the block fenced
as `sig-vectors`, recomputes every value, verifies every `sig` (and the signed envelope of the
worked example, §11.2), and checks that a changed byte makes verification fail.

usage: sig_vectors.py PROTOCOL.md
exit status: 0 every value matches; 1 a mismatch (each one printed); 2 usage; 77 no cryptography
"""

import hashlib
import json
import re
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
except ImportError:
    print("sig vectors: skipped, the cryptography package is missing (python3-cryptography)")
    sys.exit(77)  # ctest's SKIP_RETURN_CODE

CONTEXT = b"vedetta-tree-1"
VERSION = 1
HINT_BYTES = 8
FIXED_BYTES = 77  # version, hint, index, count, signature
HASH_BYTES = 32
MAX_LEAVES = 64


class Mismatch(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# Reading PROTOCOL.md


def field_order(text):
    """The keys of §4.1's table, in its (canonical) order."""
    section = re.search(r"^### 4\.1 .*?$(.*?)^### 4\.2 ", text, re.M | re.S)
    if not section:
        raise Mismatch("PROTOCOL.md: no section 4.1")
    keys = re.findall(r"^\| `([a-z_]+)` \|", section.group(1), re.M)
    if "body" not in keys or "sig" not in keys:
        raise Mismatch("PROTOCOL.md §4.1: the field table lacks body or sig")
    return keys


def vectors(text):
    """The `name: value` lines of the sig-vectors block; indented lines continue a value."""
    block = re.search(r"^```sig-vectors\n(.*?)^```", text, re.M | re.S)
    if not block:
        raise Mismatch("PROTOCOL.md: no ```sig-vectors block")
    values, name = {}, None
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if name is None:
                raise Mismatch("sig-vectors: a continuation line before any name")
            values[name] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        if name in values:
            raise Mismatch(f"sig-vectors: {name} given twice")
        values[name] = value.strip()
    return values


def hex_value(values, name):
    if name not in values:
        raise Mismatch(f"sig-vectors: {name} missing")
    try:
        return bytes.fromhex("".join(values[name].split()))
    except ValueError as e:
        raise Mismatch(f"sig-vectors: {name} is not hex: {e}")


def example_frame(text):
    """The hex dump of the frame in §11.2."""
    section = re.search(r"^### 11\.2 .*?^```\n(.*?)^```", text, re.M | re.S)
    if not section:
        raise Mismatch("PROTOCOL.md: no hex dump in §11.2")
    return bytes.fromhex("".join(section.group(1).split()))


# ------------------------------------------------------------------------------------------------
# msgpack, shortest forms (§4.6.2)


def mp_uint(n):
    if n < 0:
        raise Mismatch(f"negative integer {n}: no envelope field holds one")
    if n <= 0x7F:
        return bytes([n])
    for tag, width in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
        if n < 1 << (8 * width):
            return bytes([tag]) + n.to_bytes(width, "big")
    raise Mismatch(f"integer {n} over 64 bits")


def mp_len(n, fix_tag, fix_max, tags):
    if n <= fix_max:
        return bytes([fix_tag | n])
    for tag, width in tags:
        if n < 1 << (8 * width):
            return bytes([tag]) + n.to_bytes(width, "big")
    raise Mismatch(f"length {n} too large")


def mp_str(s):
    b = s.encode("utf-8")
    return mp_len(len(b), 0xA0, 31, ((0xD9, 1), (0xDA, 2), (0xDB, 4))) + b


def mp_bin(b):
    return mp_len(len(b), 0, -1, ((0xC4, 1), (0xC5, 2), (0xC6, 4))) + b


def mp_map_header(n):
    return mp_len(n, 0x80, 15, ((0xDE, 2), (0xDF, 4)))


def mp_array_header(n):
    return mp_len(n, 0x90, 15, ((0xDC, 2), (0xDD, 4)))


def mp_value(v):
    if isinstance(v, bool):
        raise Mismatch("no envelope field is a bool")
    if isinstance(v, int):
        return mp_uint(v)
    if isinstance(v, str):
        return mp_str(v)
    if isinstance(v, (bytes, bytearray)):
        return mp_bin(bytes(v))
    if isinstance(v, list):
        return mp_array_header(len(v)) + b"".join(mp_value(x) for x in v)
    if isinstance(v, dict):  # a ref: sender then id, nothing else
        return (mp_map_header(2) + mp_str("sender") + mp_value(v["sender"]) + mp_str("id")
                + mp_value(v["id"]))
    raise Mismatch(f"cannot encode {v!r}")


class Reader:
    """A msgpack reader for the formats an envelope may use on the wire."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Mismatch("msgpack: truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, width):
        return int.from_bytes(self.take(width), "big")

    def value(self):
        t = self.take(1)[0]
        if t <= 0x7F:
            return t
        if t >= 0xE0:
            return t - 0x100
        if 0x80 <= t <= 0x8F:
            return self.map(t & 0x0F)
        if 0x90 <= t <= 0x9F:
            return [self.value() for _ in range(t & 0x0F)]
        if 0xA0 <= t <= 0xBF:
            return self.take(t & 0x1F).decode("utf-8")
        sized = {0xD9: 1, 0xDA: 2, 0xDB: 4}
        if t in sized:
            return self.take(self.uint(sized[t])).decode("utf-8")
        sized = {0xC4: 1, 0xC5: 2, 0xC6: 4}
        if t in sized:
            return bytes(self.take(self.uint(sized[t])))
        sized = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
        if t in sized:
            return self.uint(sized[t])
        sized = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
        if t in sized:
            return int.from_bytes(self.take(sized[t]), "big", signed=True)
        if t in (0xDC, 0xDD):
            return [self.value() for _ in range(self.uint(2 if t == 0xDC else 4))]
        if t in (0xDE, 0xDF):
            return self.map(self.uint(2 if t == 0xDE else 4))
        raise Mismatch(f"msgpack: type byte {t:02x} not expected in an envelope")

    def map(self, n):
        out = {}
        for _ in range(n):
            key = self.value()
            if not isinstance(key, str) or key in out:
                raise Mismatch(f"msgpack: bad or repeated key {key!r}")
            out[key] = self.value()
        return out


# ------------------------------------------------------------------------------------------------
# §4.6: the canonical form, the tree, the sig value


def H(data):
    return hashlib.blake2b(data, digest_size=HASH_BYTES).digest()


def present(value):
    return value not in ("", [], None)


def canonical(fields, body, order):
    """§4.6.2: the known fields but sig, in canonical order, body replaced by its hash."""
    pairs = []
    for key in order:
        if key == "sig":
            continue
        if key == "body":
            pairs.append(mp_str(key) + mp_bin(H(body)))
        elif key in fields and present(fields[key]):
            pairs.append(mp_str(key) + mp_value(fields[key]))
    return mp_map_header(len(pairs)) + b"".join(pairs)


def leaf(form):
    return H(b"\x00" + form)


def node(left, right):
    return H(b"\x01" + left + right)


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    n = len(leaves)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def path_len(m, n):
    if n == 1:
        return 0
    k = split(n)
    return 1 + (path_len(m, k) if m < k else path_len(m - k, n - k))


def signed_message(n, root):
    return CONTEXT + n.to_bytes(2, "big") + root


def encode_sig(public, m, n, signature, siblings):
    head = bytes([VERSION]) + public[:HINT_BYTES] + m.to_bytes(2, "big") + n.to_bytes(2, "big")
    return head + signature + b"".join(siblings)


def root_from_path(r, m, n, siblings):
    """RFC 9162 §2.1.3.2, the root it leads to instead of a comparison."""
    fn, sn = m, n - 1
    for p in siblings:
        if sn == 0:
            raise Mismatch("path longer than the tree")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Mismatch("path shorter than the tree")
    return r


def verify(fields, body, sig, public, order):
    """§4.6.6 steps 1-6. Returns None if the signature holds, else the failing step's reason."""
    if not sig:
        return "missing"
    if sig[0] != VERSION:
        return f"version {sig[0]} unknown"
    if len(sig) < FIXED_BYTES:
        return "too short"
    m = int.from_bytes(sig[9:11], "big")
    n = int.from_bytes(sig[11:13], "big")
    if not 1 <= n <= MAX_LEAVES or m >= n:
        return f"leaf {m} of a tree of {n}"
    k = path_len(m, n)
    if len(sig) != FIXED_BYTES + HASH_BYTES * k:
        return f"{len(sig)} bytes, leaf {m} of {n} needs {FIXED_BYTES + HASH_BYTES * k}"
    if sig[1:9] != public[:HINT_BYTES]:
        return "made with another key"
    at = FIXED_BYTES
    siblings = [sig[at + HASH_BYTES * i : at + HASH_BYTES * (i + 1)] for i in range(k)]
    r = root_from_path(leaf(canonical(fields, body, order)), m, n, siblings)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig[13:77], signed_message(n, r))
    except InvalidSignature:
        return "does not verify"
    return None


def split_envelope(env, order):
    """A decoded envelope map as (known fields but body and sig, body, sig), refs reduced to
    sender and id: what a verifier has after decoding."""
    fields = {}
    for key, value in env.items():
        if key not in order or key in ("body", "sig"):
            continue  # unknown keys are not covered
        if key == "refs":
            value = [{"sender": r["sender"], "id": r["id"]} for r in value]
        fields[key] = value
    return fields, env["body"], env.get("sig", b"")


# ------------------------------------------------------------------------------------------------


def verify_count_claim(envelope, leaves, public, signature, order):
    """True if the third envelope, claimed as leaf 1 of 2 with the path (node01), verifies."""
    _, fields, body = envelope
    node01 = mth(leaves[:2])
    if root_from_path(leaves[2], 1, 2, [node01]) != mth(leaves):
        raise Mismatch("§4.6.3: leaf 1 of 2 with the path (node01) should reach the root of 3")
    sig = encode_sig(public, 1, 2, signature, [node01])
    return verify(fields, body, sig, public, order) is None


def check(text):
    order = field_order(text)
    values = vectors(text)
    failures = []
    checked = 0

    def expect(name, got):
        nonlocal checked
        want = hex_value(values, name)
        checked += 1
        if got != want:
            failures.append(f"{name}:\n  document: {want.hex()}\n  computed: {got.hex()}")

    seed = hex_value(values, "seed")
    if seed != bytes(range(32)):
        failures.append("seed: §4.6.8 says the bytes 00 01 ... 1f")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    raw = serialization.Encoding.Raw
    public = private.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    expect("public", public)

    names = sorted({m.group(1) for m in map(re.compile(r"^(e\d+)\.").match, values) if m})
    if not names:
        raise Mismatch("sig-vectors: no envelopes")
    envelopes, leaves = [], []
    for name in names:
        try:
            fields = json.loads(values[f"{name}.fields"])
        except (KeyError, json.JSONDecodeError) as e:
            raise Mismatch(f"sig-vectors: {name}.fields: {e}")
        unknown = set(fields) - set(order)
        if unknown or "body" in fields or "sig" in fields:
            raise Mismatch(f"sig-vectors: {name}.fields names {sorted(unknown) or 'body or sig'}")
        body = hex_value(values, f"{name}.body")
        expect(f"{name}.body-hash", H(body))
        form = canonical(fields, body, order)
        expect(f"{name}.canonical", form)
        leaves.append(leaf(form))
        expect(f"{name}.leaf", leaves[-1])
        envelopes.append((name, fields, body))

    # The bodies the prose describes
    bodies = {name: body for name, _, body in envelopes}
    if bodies.get("e1") != b"":
        failures.append("e1.body: §4.6.8 says it is empty")
    if bodies.get("e3") != bytes(i % 256 for i in range(300)):
        failures.append("e3.body: §4.6.8 says 300 bytes, byte i being i mod 256")

    n = len(leaves)
    if n >= 2:
        expect("node01", mth(leaves[:2]))
    root = mth(leaves)
    expect("root", root)
    message = signed_message(n, root)
    expect("signed", message)
    signature = private.sign(message)  # Ed25519 is deterministic (RFC 8032)
    expect("signature", signature)

    sigs = {}
    for m, (name, fields, body) in enumerate(envelopes):
        sig = encode_sig(public, m, n, signature, path(m, leaves))
        expect(f"{name}.sig", sig)
        sigs[name] = sig
        # The verifier, on the document's value, and on every single-byte change of it
        doc_sig = hex_value(values, f"{name}.sig")
        reason = verify(fields, body, doc_sig, public, order)
        if reason:
            failures.append(f"{name}.sig does not verify: {reason}")
        for i in range(len(doc_sig)):
            bad = bytearray(doc_sig)
            bad[i] ^= 0x01
            if verify(fields, body, bytes(bad), public, order) is None:
                failures.append(f"{name}.sig still verifies with byte {i} changed")
        changed = dict(fields, sent=fields["sent"] + 1)
        if verify(changed, body, doc_sig, public, order) is None:
            failures.append(f"{name}.sig still verifies with `sent` changed")
        if verify(fields, body + b"\x00", doc_sig, public, order) is None:
            failures.append(f"{name}.sig still verifies with the body changed")

    # §4.6.3: e3 reaches the same root as leaf 1 of a tree of 2; the signed count refuses it
    if len(envelopes) == 3 and verify_count_claim(envelopes[2], leaves, public, signature, order):
        failures.append("e3 as leaf 1 of a tree of 2 verifies: the count is not signed")

    # e2 as sent: canonical order, the real body, sig last; and read back and verified
    if "e2.wire" in values:
        name, fields, body = envelopes[names.index("e2")]
        pairs = []
        for key in order:
            if key == "body":
                pairs.append(mp_str(key) + mp_bin(body))
            elif key != "sig" and key in fields and present(fields[key]):
                pairs.append(mp_str(key) + mp_value(fields[key]))
        pairs.append(mp_str("sig") + mp_bin(sigs["e2"]))
        expect("e2.wire", mp_map_header(len(pairs)) + b"".join(pairs))
        wire = hex_value(values, "e2.wire")
        reader = Reader(wire)
        reason = verify(*split_envelope(reader.value(), order), public, order)
        if reader.pos != len(wire) or reason:
            failures.append(f"e2.wire: does not decode and verify ({reason or 'trailing bytes'})")

    # The worked example of §11.2: its pub's envelope is signed with the same key
    frame = example_frame(text)
    reader = Reader(frame)
    command = reader.value()
    checked += 1
    if command.get("op") != "pub":
        failures.append("§11.2: the first command is not a pub")
    else:
        reason = verify(*split_envelope(command["env"], order), public, order)
        if reason:
            failures.append(f"§11.2: the envelope's sig: {reason}")
    return checked, failures


def main(argv):
    if len(argv) != 2:
        print("usage: sig_vectors.py PROTOCOL.md", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            text = f.read()
        checked, failures = check(text)
    except (OSError, Mismatch, KeyError, ValueError) as e:
        print(f"sig vectors: {e}", file=sys.stderr)
        return 1
    if failures:
        print(f"sig vectors: {len(failures)} of {checked} checks failed", file=sys.stderr)
        for failure in failures:
            print(failure, file=sys.stderr)
        return 1
    print(f"sig vectors: {checked} values match")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
