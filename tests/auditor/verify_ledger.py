#!/usr/bin/env python3
"""Independent verifier for the egress ledger, written from docs/LEDGER.md alone.

Usage: verify_ledger.py DATA_DIR [--pubkey FILE] [--checkpoint FILE ...] [--no-local]
       verify_ledger.py --self-test

Python 3.11 standard library only; Ed25519 follows RFC 8032 section 6.
Exit codes (docs/LEDGER.md): 0 intact, 1 content changed, 2 truncated or
rolled back behind a checkpoint, 3 fork, 4 bad signature or key, 64 usage.
Checkpoint files are those given with --checkpoint plus, unless --no-local,
DATA_DIR/checkpoints/*.txt (the document's "given (or local) checkpoint").
"""

import base64
import hashlib
import io
import json
import os
import re
import sys
import tempfile

INTACT, TAMPERED, TRUNCATED, FORK, SIGNATURE, USAGE = 0, 1, 2, 3, 4, 64

# ---------------------------------------------------------------- Ed25519 (RFC 8032, section 6)

P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    x = (a[1] - a[0]) * (b[1] - b[0]) % P
    y = (a[1] + a[0]) * (b[1] + b[0]) % P
    c = 2 * a[3] * b[3] * D % P
    d = 2 * a[2] * b[2] % P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f, g * h, f * g, e * h)


def _mul(s, pt):
    acc = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        s >>= 1
    return acc


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def _compress(pt):
    zinv = pow(pt[2], P - 2, P)
    x, y = pt[0] * zinv % P, pt[1] * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def _hmodq(data):
    return int.from_bytes(hashlib.sha512(data).digest(), "little") % Q


def _secret_expand(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed25519_public(seed):
    return _compress(_mul(_secret_expand(seed)[0], G))


def ed25519_sign(seed, msg):
    a, prefix = _secret_expand(seed)
    pub = _compress(_mul(a, G))
    r = _hmodq(prefix + msg)
    rs = _compress(_mul(r, G))
    s = (r + _hmodq(rs + pub + msg) * a) % Q
    return rs + s.to_bytes(32, "little")


def ed25519_verify(pub, msg, sig):
    if len(pub) != 32 or len(sig) != 64:
        return False
    a = _decompress(pub)
    r = _decompress(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= Q:
        return False
    h = _hmodq(sig[:32] + pub + msg)
    return _equal(_mul(s, G), _add(r, _mul(h, a)))


# ---------------------------------------------------------------- format helpers


class Problem(Exception):
    """A verification failure: exit code and one-line message."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


HEX64 = re.compile(r"[0-9a-f]{64}\Z")
HEX8 = re.compile(r"[0-9a-f]{8}\Z")
TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
SEGMENT = re.compile(r"segment-([0-9]{20})\.jsonl(\.zst)?\Z")
ZERO = "0" * 64
DASH = "\u2014 "


def segment_files(ledger_dir):
    """The segment files in seq order, each once: a sealed segment is
    compressed (`.jsonl.zst`); if both forms exist (a crash while
    compressing), the plain one is the segment."""
    names = [n for n in os.listdir(ledger_dir) if n.startswith("segment-") and (n.endswith(".jsonl") or n.endswith(".jsonl.zst"))]
    plain = {n for n in names if n.endswith(".jsonl")}
    return sorted(n for n in names if not (n.endswith(".zst") and n[: -len(".zst")] in plain))


def read_segment(path):
    """A segment's bytes; a `.zst` one decompressed (one zstd frame): with
    Python 3.14's compression.zstd, the zstandard package, or the zstd tool."""
    with open(path, "rb") as f:
        data = f.read()
    if not path.endswith(".zst"):
        return data
    try:
        from compression import zstd  # Python 3.14
        return zstd.decompress(data)
    except ImportError:
        pass
    try:
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except ImportError:
        pass
    import subprocess
    return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout


def b64(text):
    """Strict standard, padded base64; None if not canonical."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def key_id(origin, pub):
    return hashlib.sha256(origin.encode() + b"\n\x01" + pub).digest()[:4]


def signed_text(origin, head_seq, head, time):
    return f"{origin}\n{head_seq}\n{head}\n{time}\n".encode()


def parse_pubkey(text):
    """`<origin>+<key id hex>+<base64(0x01 || key)>` -> (origin, key id bytes, key)."""
    parts = text.strip().split("+", 2)  # base64 may hold "+": the origin may not (as in signed notes)
    if len(parts) != 3 or not parts[0] or not HEX8.match(parts[1]):
        raise Problem(SIGNATURE, "verifier key is not <origin>+<key id>+<base64 key>")
    origin, kid, raw = parts[0], bytes.fromhex(parts[1]), b64(parts[2])
    if raw is None or len(raw) != 33 or raw[0] != 1:
        raise Problem(SIGNATURE, "verifier key is not base64(0x01 || 32-byte Ed25519 key)")
    if key_id(origin, raw[1:]) != kid:
        raise Problem(SIGNATURE, "verifier key's key id does not match its key")
    return origin, kid, raw[1:]


def _no_dups(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate member {k!r}")
        obj[k] = v
    return obj


def _no_constant(name):
    raise ValueError(f"not JSON: {name}")


def parse_line(raw):
    obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dups, parse_constant=_no_constant)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def is_int(x):
    return type(x) is int


def parse_checkpoint_file(text, trusted):
    """Detached checkpoint -> (head_seq, head). Raises Problem(4) unless trusted key signed it."""
    origin, kid, pub = trusted
    lines = text.split("\n")
    if len(lines) < 6 or lines[4] != "":
        raise Problem(SIGNATURE, "not a checkpoint file (four lines, an empty line, signature lines)")
    c_origin, c_seq, c_head, c_time = lines[:4]
    if not re.fullmatch(r"0|[1-9][0-9]*", c_seq) or not HEX64.match(c_head):
        raise Problem(SIGNATURE, "checkpoint file's head_seq or head is malformed")
    if c_origin != origin:
        raise Problem(SIGNATURE, f"checkpoint is for origin {c_origin!r}, the key is {origin!r}")
    body = signed_text(c_origin, c_seq, c_head, c_time)
    sigs = [ln for ln in lines[5:] if ln != ""]
    for ln in sigs:
        if not ln.startswith(DASH):
            raise Problem(SIGNATURE, "checkpoint signature line does not start with an em dash")
        name, _, blob = ln[len(DASH):].partition(" ")
        raw = b64(blob)
        if name != origin or raw is None or len(raw) != 68 or raw[:4] != kid:
            continue
        if ed25519_verify(pub, body, raw[4:]):
            return int(c_seq), c_head
        raise Problem(SIGNATURE, f"checkpoint at seq {c_seq}: bad signature")
    raise Problem(SIGNATURE, f"checkpoint at seq {c_seq}: no signature by key {origin}+{kid.hex()}")


# ---------------------------------------------------------------- the walk


def walk(ledger_dir, trusted_loader, wanted):
    """Steps 1-3. Returns (lines, head seq, head hash, segments, checkpoints, partial, {seq: hash})."""
    names = segment_files(ledger_dir)
    seq, prev, found, checkpoints, partial = 0, ZERO, {}, 0, None
    for i, name in enumerate(names):
        last_segment = i == len(names) - 1
        m = SEGMENT.match(name)
        if not m or int(m.group(1)) != seq:
            raise Problem(TAMPERED, f"seq {seq}, {name}: segment name should be segment-{seq:020d}.jsonl")
        with io.BytesIO(read_segment(os.path.join(ledger_dir, name))) as f:
            lineno = 0
            for raw in f:
                lineno += 1
                where = f"seq {seq}, {name} line {lineno}"
                if not raw.endswith(b"\n"):
                    if last_segment:  # a write in progress: stop here
                        partial = f"{name} line {lineno} ({len(raw)} bytes)"
                        break
                    raise Problem(TAMPERED, f"{where}: missing newline at the end of a segment")
                raw = raw[:-1]
                try:
                    obj = parse_line(raw)
                except ValueError as e:  # includes UnicodeDecodeError and JSONDecodeError
                    raise Problem(TAMPERED, f"{where}: not a JSON object line ({e})") from None
                if list(obj)[:5] != ["v", "seq", "prev", "ts", "kind"]:
                    raise Problem(TAMPERED, f"{where}: first members are not v, seq, prev, ts, kind")
                if not is_int(obj["v"]) or obj["v"] != 1:
                    raise Problem(TAMPERED, f"{where}: v is {obj['v']!r}, not 1")
                if not is_int(obj["seq"]) or obj["seq"] != seq:
                    raise Problem(TAMPERED, f"{where}: line says seq {obj['seq']!r}")
                if obj["prev"] != prev:
                    raise Problem(TAMPERED, f"{where}: prev does not match the hash of the previous line")
                if not isinstance(obj["ts"], str) or not TS.match(obj["ts"]):
                    raise Problem(TAMPERED, f"{where}: ts {obj['ts']!r} is not RFC 3339 UTC with 6 digits")
                kind = obj["kind"]
                if kind not in ("start", "end", "checkpoint", "note"):
                    raise Problem(TAMPERED, f"{where}: unknown kind {kind!r}")
                if lineno == 1 and i > 0 and not (kind == "note" and obj.get("event") == "segment"):
                    raise Problem(TAMPERED, f"{where}: a segment after the first must begin with a segment note")
                if kind == "checkpoint":
                    check_line(obj, seq, where, trusted_loader())
                    checkpoints += 1
                prev = hashlib.sha256(raw).hexdigest()
                if seq in wanted:
                    found[seq] = prev
                seq += 1
            if lineno == 0 and not last_segment:
                raise Problem(TAMPERED, f"seq {seq}, {name}: empty segment before the last one")
    return seq, prev, len(names), checkpoints, partial, found


def check_line(obj, seq, where, trusted):
    """Step 3 for a checkpoint line."""
    origin, kid, pub = trusted
    head_seq, head, time = obj.get("head_seq"), obj.get("head"), obj.get("time")
    if not is_int(head_seq) or head_seq != seq - 1 or head != obj["prev"]:
        raise Problem(TAMPERED, f"{where}: checkpoint head_seq/head is not the previous line")
    if not isinstance(time, str) or not TS.match(time):
        raise Problem(TAMPERED, f"{where}: checkpoint time {time!r} is malformed")
    if obj.get("origin") != origin or obj.get("key_id") != kid.hex():
        raise Problem(SIGNATURE, f"{where}: checkpoint by {obj.get('origin')!r}/{obj.get('key_id')!r}, "
                      f"trusted key is {origin}+{kid.hex()}")
    sig = b64(obj.get("signature")) if isinstance(obj.get("signature"), str) else None
    if sig is None or not ed25519_verify(pub, signed_text(origin, head_seq, head, time), sig):
        raise Problem(SIGNATURE, f"{where}: bad checkpoint signature")


def verify(data_dir, pubkey_path, checkpoint_paths, local=True):
    ledger_dir = os.path.join(data_dir, "ledger")
    if not os.path.isdir(ledger_dir):
        raise Problem(USAGE, f"no ledger here: {ledger_dir} is not a directory")
    trusted = []

    def trusted_loader():
        if not trusted:
            try:
                with open(pubkey_path, encoding="utf-8") as f:
                    trusted.append(parse_pubkey(f.read()))
            except (OSError, UnicodeDecodeError) as e:  # no key to check with: a key problem, as the CLI says
                raise Problem(SIGNATURE, f"cannot read verifier key {pubkey_path}: {e}") from None
        return trusted[0]

    paths = list(checkpoint_paths)
    local_dir = os.path.join(data_dir, "checkpoints")
    if local and os.path.isdir(local_dir):
        paths += sorted(os.path.join(local_dir, n) for n in os.listdir(local_dir) if n.endswith(".txt"))
    texts = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                texts.append((path, f.read()))
        except (OSError, UnicodeDecodeError) as e:
            raise Problem(USAGE, f"cannot read checkpoint {path}: {e}") from None
    # Read the checkpoint files (without judging them) first, to know which line hashes to keep.
    heads = [t.split("\n")[1] if t.count("\n") else "" for _, t in texts]
    wanted = {int(h) for h in heads if re.fullmatch(r"[0-9]+", h)}
    count, head, nseg, ncp, partial, found = walk(ledger_dir, trusted_loader, wanted)
    for path, text in texts:  # step 4
        try:
            cp_seq, cp_head = parse_checkpoint_file(text, trusted_loader())
        except Problem as e:
            raise Problem(e.code, f"{e.msg} ({path})") from None
        if cp_seq >= count:
            end = f"the log ends at seq {count - 1}" if count else "the log is empty"
            raise Problem(TRUNCATED, f"seq {cp_seq}: truncated or rolled back: checkpoint {path} signed seq {cp_seq}, {end}")
        if found[cp_seq] != cp_head:
            raise Problem(FORK, f"seq {cp_seq}: fork: checkpoint {path} signed {cp_head}, the log has {found[cp_seq]}")
    span = f"seq 0..{count - 1}, head {head}" if count else "empty log"
    msg = (f"ledger intact: {count} lines ({span}) in {nseg} segment(s), "
           f"{ncp} checkpoint line(s) verified, {len(texts)} checkpoint file(s) verified")
    if partial:
        msg += f"; skipped a partial last line (write in progress?) at {partial}"
    return msg


# ---------------------------------------------------------------- the document's test vector

VECTOR_KEY = "egress-proxy@example+cce35119+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
VECTOR_LINES = [
    ('{"v":1,"seq":0,"prev":"0000000000000000000000000000000000000000000000000000000000000000",'
     '"ts":"2026-11-27T12:00:00.000000Z","kind":"start","req":"0193a7c2-5f1e-7b3a-9c1d-2e4f6a8b0c1d",'
     '"principal":"alice","access_key_id":"EGRSEXAMPLE000000001","source_ip":"192.0.2.10",'
     '"user_agent":"Boto3/1.43.11","method":"GET","operation":"GetObject","bucket":"training-data",'
     '"key":"imagenet/part-00001.parquet","version_id":null,"range":"bytes=0-1048575"}',
     "c68e5c27c06e7206e83e32b07e15c4bc6cc109d61d8bd524a32a4f096838fead"),
    ('{"v":1,"seq":1,"prev":"c68e5c27c06e7206e83e32b07e15c4bc6cc109d61d8bd524a32a4f096838fead",'
     '"ts":"2026-11-27T12:00:00.041000Z","kind":"end","req":"0193a7c2-5f1e-7b3a-9c1d-2e4f6a8b0c1d",'
     '"start_seq":0,"status":206,"bytes_sent":1048576,"object_size":134217728,'
     '"etag":"\\"9b2cf535f27731c974343645a3985328\\"","upstream_request_id":"4442587FB7D0A2F9",'
     '"upstream_id2":null,"duration_ms":41,"outcome":"complete","error_code":null}',
     "57cade0dc4a83c3ad4d68ff2ff850385f86f5d45508a0d3b78bae9adbe280813"),
    ('{"v":1,"seq":2,"prev":"57cade0dc4a83c3ad4d68ff2ff850385f86f5d45508a0d3b78bae9adbe280813",'
     '"ts":"2026-11-27T12:00:01.000002Z","kind":"checkpoint","origin":"egress-proxy@example","head_seq":1,'
     '"head":"57cade0dc4a83c3ad4d68ff2ff850385f86f5d45508a0d3b78bae9adbe280813",'
     '"time":"2026-11-27T12:00:01.000000Z","key_id":"cce35119",'
     '"signature":"rcn29A05zdTdxJW9TvpRKsG+lyHy54v/r3H3MarQXXS0q2Id4oLx/84OvvgvP38+KUgjvwn0xUOweSC7oJlECg=="}',
     "431e1663c9541e6066e59279abae64ccef6cb76b0d99444f61154fa743408fb9"),
    ('{"v":1,"seq":3,"prev":"431e1663c9541e6066e59279abae64ccef6cb76b0d99444f61154fa743408fb9","ts":"2026-11-27T12:00:02.000000Z","kind":"note","event":"policy_put","by":"admin:1f2e3d4c","document":"{\\"Statement\\":[{\\"Action\\":\\"s3:GetObject\\",\\"Effect\\":\\"Deny\\",\\"Resource\\":\\"arn:aws:s3:::training-data/raw/*\\",\\"Sid\\":\\"NoRaw\\"}],\\"Version\\":\\"2012-10-17\\"}","policy":"no-raw","sha256":"33cf5495166c9accc60cf691c568252e919bfd33fb03b8e6ee97aa5ed9fdad4b"}',
     "5e5932c3e4beb0e583934ad8678b08cbef3272465c9c3856e8370f8e6f35f584"),
    ('{"v":1,"seq":4,"prev":"5e5932c3e4beb0e583934ad8678b08cbef3272465c9c3856e8370f8e6f35f584","ts":"2026-11-27T12:00:02.100000Z","kind":"note","event":"grants_set","by":"admin:1f2e3d4c","limits":{},"policies":[{"policy":"read-only","sha256":"a4c15017b4b76b4c2bf972f2428048e1bc518f34b82eb266b04ce552d8f5cf4e"},{"policy":"no-raw","sha256":"33cf5495166c9accc60cf691c568252e919bfd33fb03b8e6ee97aa5ed9fdad4b"}],"principal":"alice","tags":{}}',
     "e09883d9789402c273e18bcd84b60c1888caa00d5b1b368201532e7098ca7a8d"),
    ('{"v":1,"seq":5,"prev":"e09883d9789402c273e18bcd84b60c1888caa00d5b1b368201532e7098ca7a8d","ts":"2026-11-27T12:00:03.000000Z","kind":"start","req":"0193a7c2-6a00-7c3b-8d2e-3f5a7b9c1d2e","principal":"alice","access_key_id":"EGRSEXAMPLE000000001","source_ip":"192.0.2.10","user_agent":"Boto3/1.43.11","method":"GET","operation":"GetObject","bucket":"training-data","key":"raw/0001.jpg","version_id":null,"range":null,"decision":{"effect":"explicit_deny","action":"s3:GetObject","resource":"arn:aws:s3:::training-data/raw/0001.jpg","policy":"no-raw","policy_sha256":"33cf5495166c9accc60cf691c568252e919bfd33fb03b8e6ee97aa5ed9fdad4b","sid":"NoRaw"}}',
     "10d40d0bfcdd0d0f196b4730e18b692d50aeb27d48f654e2555ea30f07f63008"),
    ('{"v":1,"seq":6,"prev":"10d40d0bfcdd0d0f196b4730e18b692d50aeb27d48f654e2555ea30f07f63008","ts":"2026-11-27T12:00:03.001000Z","kind":"end","req":"0193a7c2-6a00-7c3b-8d2e-3f5a7b9c1d2e","start_seq":5,"status":403,"bytes_sent":387,"object_size":null,"etag":null,"upstream_request_id":null,"upstream_id2":null,"duration_ms":1,"outcome":"denied","error_code":"AccessDenied"}',
     "131c4bd6a98411e7c4dc6cc128dfc813ea0d7a90e2f47569d7c184052c24679b"),
]
VECTOR_FILE = (
    "egress-proxy@example\n1\n57cade0dc4a83c3ad4d68ff2ff850385f86f5d45508a0d3b78bae9adbe280813\n"
    "2026-11-27T12:00:01.000000Z\n\n"
    "\u2014 egress-proxy@example zONRGa3J9vQNOc3U3cSVvU76USrBvpch8ueL/69x9zGq0F10tKtiHeKC8f/ODr74Lz9/PilII78J9MVDsHkgu6CZRAo=\n"
)


def self_test():
    failures = []
    try:
        _self_test(failures)
    except (Problem, ValueError, KeyError, TypeError) as e:
        failures.append(f"{type(e).__name__}: {e}")
    if failures:
        print("self-test FAILED: " + "; ".join(failures))
        return TAMPERED
    print(f"self-test ok: {len(VECTOR_LINES)} line hashes, verifier key (seed 07*32, key id cce35119), checkpoint line and file signatures")
    return INTACT


def _self_test(failures):
    def check(ok, what):
        if not ok:
            failures.append(what)

    seed = b"\x07" * 32
    origin, kid, pub = parse_pubkey(VECTOR_KEY)
    check(origin == "egress-proxy@example" and kid.hex() == "cce35119", "verifier key: origin or key id")
    check(ed25519_public(seed) == pub, "verifier key is not the public key of seed 07*32")
    prev = ZERO
    for i, (line, want) in enumerate(VECTOR_LINES):
        obj = parse_line(line.encode())
        check(obj["seq"] == i and obj["prev"] == prev, f"line {i}: seq or prev")
        prev = hashlib.sha256(line.encode()).hexdigest()
        check(prev == want, f"line {i}: hash {prev}, document says {want}")
    cp = parse_line(VECTOR_LINES[2][0].encode())
    body = signed_text(cp["origin"], cp["head_seq"], cp["head"], cp["time"])
    sig = b64(cp["signature"])
    check(ed25519_verify(pub, body, sig), "checkpoint line: signature does not verify")
    check(ed25519_sign(seed, body) == sig, "checkpoint line: signing with seed 07*32 gives another signature")
    check(not ed25519_verify(pub, body.replace(b"\n1\n", b"\n2\n"), sig), "a changed head_seq still verifies")
    check(parse_checkpoint_file(VECTOR_FILE, (origin, kid, pub)) == (1, cp["head"]), "detached checkpoint file")
    blob = VECTOR_FILE.rstrip("\n").rsplit(" ", 1)[1]
    check(b64(blob) == kid + sig, "detached signature is not key id || the line's signature")
    # The whole verifier on the vector as a data dir.
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "ledger"))
        os.makedirs(os.path.join(tmp, "keys"))
        with open(os.path.join(tmp, "ledger", f"segment-{0:020d}.jsonl"), "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line, _ in VECTOR_LINES))
        with open(os.path.join(tmp, "keys", "checkpoint.pub"), "w", encoding="utf-8") as f:
            f.write(VECTOR_KEY + "\n")
        cpf = os.path.join(tmp, "cp.txt")
        with open(cpf, "w", encoding="utf-8") as f:
            f.write(VECTOR_FILE)
        try:
            verify(tmp, os.path.join(tmp, "keys", "checkpoint.pub"), [cpf])
        except Problem as e:
            failures.append(f"verifier on the vector: {e.msg}")


# ---------------------------------------------------------------- command line

USAGE_TEXT = "usage: verify_ledger.py DATA_DIR [--pubkey FILE] [--checkpoint FILE ...] [--no-local] | --self-test"


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    data_dir, pubkey, checkpoints, local = None, None, [], True
    it = iter(argv)
    for arg in it:
        if arg in ("--pubkey", "--checkpoint"):
            value = next(it, None)
            if value is None:
                print(f"{arg} needs a FILE\n{USAGE_TEXT}", file=sys.stderr)
                return USAGE
            if arg == "--pubkey":
                pubkey = value
            else:
                checkpoints.append(value)
        elif arg == "--no-local":
            local = False
        elif arg.startswith("-") or data_dir is not None:
            print(f"unexpected argument {arg!r}\n{USAGE_TEXT}", file=sys.stderr)
            return USAGE
        else:
            data_dir = arg
    if data_dir is None:
        print(USAGE_TEXT, file=sys.stderr)
        return USAGE
    pubkey = pubkey or os.path.join(data_dir, "keys", "checkpoint.pub")
    try:
        print(verify(data_dir, pubkey, checkpoints, local))
        return INTACT
    except Problem as e:
        label = {TAMPERED: "TAMPERED", TRUNCATED: "TRUNCATED", FORK: "FORK", SIGNATURE: "SIGNATURE", USAGE: "USAGE"}
        print(f"{label[e.code]}: {e.msg}", file=sys.stderr if e.code == USAGE else sys.stdout)
        return e.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
