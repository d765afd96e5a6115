#!/usr/bin/env python3
"""Which policies were attached to a principal at a given seq, from the
ledger alone (docs/LEDGER.md, "Who was allowed what").

    grants_at.py DATA_DIR SEQ PRINCIPAL

Reads the segments in order up to (not including) SEQ and replays the
`grants_set`, `policy_put` and `policy_deleted` notes: the principal's
attached policy names come from its last `grants_set`, each policy's
document from the last `policy_put` of that name (its SHA-256 checked
against the document). Built-in policies are never put; their documents
are in docs/POLICIES.md. Prints JSON. Run verify_ledger.py first: this
script trusts the chain it reads.

Exit codes: 0 answered; 1 a document does not match its hash; 64 usage.
"""

import hashlib
import json
import os
import sys

BUILTIN = ("read-only", "read-write", "full")


def lines(ledger_dir):
    # Sealed segments are compressed; verify_ledger.py reads both forms.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from verify_ledger import read_segment, segment_files

    for name in segment_files(ledger_dir):
        for raw in read_segment(os.path.join(ledger_dir, name)).split(b"\n")[:-1]:
            yield json.loads(raw)


def grants_at(data_dir, seq, principal):
    grants, set_at, documents = None, None, {}
    for line in lines(os.path.join(data_dir, "ledger")):
        if line["seq"] >= seq:
            break
        if line["kind"] != "note":
            continue
        event = line.get("event")
        if event == "grants_set" and line["principal"] == principal:
            grants, set_at = line, line["seq"]
        elif event == "policy_put":
            digest = hashlib.sha256(line["document"].encode()).hexdigest()
            if digest != line["sha256"]:
                raise ValueError(f"seq {line['seq']}: policy {line['policy']} does not match its sha256")
            documents[line["policy"]] = (line["sha256"], json.loads(line["document"]), line["seq"])
        elif event == "policy_deleted":
            documents.pop(line["policy"], None)
    if grants is None:
        return {"principal": principal, "seq": seq, "set_at_seq": None, "policies": [], "tags": {}, "limits": {}}
    policies = []
    for attached in grants["policies"]:
        name = attached["policy"]
        if name in BUILTIN:
            policies.append({"policy": name, "builtin": True, "sha256": attached["sha256"]})
        elif name in documents:
            sha256, document, put_at = documents[name]
            policies.append({"policy": name, "sha256": sha256, "put_at_seq": put_at, "document": document})
        else:
            policies.append({"policy": name, "sha256": attached["sha256"], "document": None})
    return {
        "principal": principal,
        "seq": seq,
        "set_at_seq": set_at,
        "policies": policies,
        "tags": grants.get("tags", {}),
        "limits": grants.get("limits", {}),
    }


def main(argv):
    if len(argv) != 3 or not argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 64
    try:
        print(json.dumps(grants_at(argv[0], int(argv[1]), argv[2])))
        return 0
    except ValueError as e:
        print(f"TAMPERED: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
