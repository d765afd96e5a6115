#!/usr/bin/env python3
"""Writes 10 IAM policies of 20 statements each into DIR (p00.json ..
p09.json), shaped like a team's real ones: prefixes per project, denies,
conditions on source address and listing prefix, a policy variable. A GET
of any object in BUCKET is allowed only by the last statement of the last
policy, so every request of the benchmark evaluates them all.

    scripts/policies-10x20.py DIR BUCKET
"""
import json
import os
import sys

out, bucket = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for p in range(10):
    statements = []
    for s in range(20):
        n = p * 20 + s
        kind = n % 5
        if kind == 0:
            st = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                  "Resource": f"arn:aws:s3:::project-{n}/datasets/*"}
        elif kind == 1:
            st = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::project-{n}",
                  "Condition": {"StringLike": {"s3:prefix": [f"team-{n}/*", "shared/*"]}}}
        elif kind == 2:
            st = {"Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/quarantine-{n}/*"}
        elif kind == 3:
            st = {"Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                  "Resource": f"arn:aws:s3:::scratch-{n}/${{aws:username}}/*",
                  "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}}
        else:
            st = {"Effect": "Deny", "NotAction": ["s3:Get*", "s3:List*"], "Resource": f"arn:aws:s3:::archive-{n}/*"}
        st["Sid"] = f"S{n:03d}"
        statements.append(st)
    if p == 9:
        statements[-1] = {"Sid": "Bench", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                          "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
    with open(os.path.join(out, f"p{p:02d}.json"), "w") as f:
        json.dump({"Version": "2012-10-17", "Statement": statements}, f, indent=1)
