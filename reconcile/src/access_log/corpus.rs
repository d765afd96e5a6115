//! Access log lines for the tests, in the documented format with values of
//! our own. One line per shape the parser must handle.

pub const OWNER: &str = "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1";
pub const HOST_ID: &str = "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h=";

/// Every field AWS documents today, a `GetObject` through the proxy (tagged).
pub const FULL: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:09:26:53 +0000] ",
    "198.51.100.24 arn:aws:sts::111122223333:assumed-role/egress-proxy/session-7 7QK2M9XZ4T1B8D0F REST.GET.OBJECT ",
    "datasets/2025/train-00017.parquet ",
    "\"GET /datasets/2025/train-00017.parquet?x-id=GetObject&x-egress-req=01956f3a-7c1e-7b42-9d0a-5e3f2c1b4a69 HTTP/1.1\" ",
    "200 - 1048576 1048576 84 12 \"-\" \"aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= SigV4 TLS_AES_128_GCM_SHA256 ",
    "AuthHeader egress-data-eu.s3.eu-central-1.amazonaws.com TLSv1.3 - - eu-central-1",
);

/// A ranged read of a version, from before the signature version field.
pub const ENDS_AFTER_HOST_ID: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [02/Jan/2018:17:05:09 +0000] ",
    "203.0.113.77 arn:aws:iam::111122223333:user/analyst 0C4F8E2A9B7D6E51 REST.GET.OBJECT reports/q4.csv ",
    "\"GET /egress-data-eu/reports/q4.csv?versionId=3HL4kqtJvjVBH40Nrjfkd HTTP/1.1\" 206 - 65536 7340032 31 9 ",
    "\"-\" \"aws-cli/1.16.0 Python/3.6.5\" 3HL4kqtJvjVBH40Nrjfkd cH9xLk2mQ8vR4tW1yB7nJ3sD6fG0aZ5eU8iO2pK4lM7=",
);

/// A `PutObject` from before the access point ARN field.
pub const ENDS_AFTER_TLS_VERSION: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [21/Jun/2019:03:44:10 +0000] ",
    "192.0.2.145 arn:aws:iam::111122223333:user/etl 9E8D7C6B5A493827 REST.PUT.OBJECT incoming/batch-0042.json ",
    "\"PUT /incoming/batch-0042.json HTTP/1.1\" 200 - - 5120 57 21 \"-\" \"aws-sdk-java/1.11.563 Linux/4.14\" - ",
    "Qm9vY2hlcnMgYXJlIG5vdCBob3N0IGlkcyBidXQgdGhpcyBvbmUgaXM= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader ",
    "s3.eu-central-1.amazonaws.com TLSv1.2",
);

/// An anonymous conditional read (304, nothing sent) from the oldest
/// format, which ends with the version id.
pub const ENDS_AFTER_VERSION_ID: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [09/Oct/2012:22:15:01 +0000] ",
    "198.51.100.3 - 5D2C8E1F0A3B4967 REST.GET.OBJECT public/readme.txt ",
    "\"GET /egress-data-eu/public/readme.txt HTTP/1.1\" 304 - - 2048 6 - \"-\" ",
    "\"Boto3/1.34.0 Python/3.12.1 Linux/6.1 Botocore/1.34.0\" -",
);

/// A `HeadObject` cut off right after the User-Agent.
pub const ENDS_AFTER_USER_AGENT: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [30/Nov/2016:12:00:00 +0000] ",
    "198.51.100.9 - 1F2E3D4C5B6A7988 REST.HEAD.OBJECT public/logo.png \"HEAD /public/logo.png HTTP/1.1\" ",
    "200 - - 4096 3 2 \"-\" \"curl/8.5.0\"",
);

/// Two fields from a future format after the ones AWS documents.
pub const UNKNOWN_TRAILING: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:09:30:00 +0000] ",
    "198.51.100.24 arn:aws:iam::111122223333:user/analyst 3A4B5C6D7E8F9012 REST.GET.OBJECT datasets/small.bin ",
    "\"GET /datasets/small.bin HTTP/1.1\" 200 - 17 17 4 3 \"-\" \"aws-cli/2.15.0\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= SigV4 TLS_AES_128_GCM_SHA256 ",
    "AuthHeader egress-data-eu.s3.eu-central-1.amazonaws.com TLSv1.3 - - eu-central-1 NewField42 \"quoted future\" -",
);

/// `-` in every field that can be empty.
pub const DASHES: &str = concat!(
    "- egress-data-eu [14/Mar/2025:09:26:53 +0000] - - A1B2C3D4E5F60718 REST.GET.OBJECT ",
    "- - - - - - - - - - - - - - - - - - - -",
);

/// A read S3 refused: the error body was sent, not the object.
pub const ERROR_READ: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:10:02:41 +0000] ",
    "203.0.113.200 arn:aws:iam::444455556666:user/outsider 6C5D4E3F2A1B0987 REST.GET.OBJECT datasets/secret.csv ",
    "\"GET /datasets/secret.csv HTTP/1.1\" 403 AccessDenied 243 - 9 - \"-\" \"aws-cli/2.15.0\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= SigV4 TLS_AES_128_GCM_SHA256 ",
    "AuthHeader egress-data-eu.s3.eu-central-1.amazonaws.com TLSv1.3 - - eu-central-1",
);

/// The key `photos/summer 2024/café%2Fmenu/v2.txt`, URL-encoded twice as S3
/// logs it (the `/` once left alone, once encoded).
pub const ENCODED_KEY: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:11:15:00 +0000] ",
    "198.51.100.24 arn:aws:sts::111122223333:assumed-role/egress-proxy/session-7 8B7A6C5D4E3F2019 REST.GET.OBJECT ",
    "photos/summer%25202024/caf%25C3%25A9%25252Fmenu%2Fv2.txt ",
    "\"GET /photos/summer%202024/caf%C3%A9%252Fmenu/v2.txt?x-egress-req=01956f3a-0000-7000-8000-000000000001 HTTP/1.1\" ",
    "200 - 311 311 7 5 \"-\" \"aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= SigV4 TLS_AES_128_GCM_SHA256 ",
    "AuthHeader egress-data-eu.s3.eu-central-1.amazonaws.com TLSv1.3 - - eu-central-1",
);

/// A Request-URI carrying the tag parameter twice: ambiguous.
pub const TWO_TAGS: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:11:20:00 +0000] ",
    "198.51.100.24 arn:aws:iam::111122223333:user/analyst 2B3C4D5E6F708192 REST.GET.OBJECT datasets/small.bin ",
    "\"GET /datasets/small.bin?x-egress-req=01956f3a-aaaa-7000-8000-000000000001&partNumber=1",
    "&x-egress-req=01956f3a-bbbb-7000-8000-000000000002 HTTP/1.1\" 200 - 17 17 4 3 \"-\" \"aws-cli/2.15.0\" -",
);

/// The tag's name and value percent-encoded, presigned, virtual-hosted.
pub const ENCODED_TAG: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:11:25:00 +0000] ",
    "198.51.100.24 arn:aws:sts::111122223333:assumed-role/egress-proxy/session-7 3C4D5E6F70819203 REST.GET.OBJECT ",
    "datasets/small.bin \"GET /datasets/small.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&x-egress%2Dreq=01956f3a%2D7c1e",
    "&X-Amz-Signature=0f0e HTTP/1.1\" 200 - 17 17 4 3 \"-\" \"Boto3/1.34.0\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= SigV4 TLS_AES_128_GCM_SHA256 ",
    "QueryString egress-data-eu.s3.eu-central-1.amazonaws.com TLSv1.3 - - eu-central-1",
);

/// A User-Agent and a Referer with spaces and quotes S3 did not escape.
pub const RAW_QUOTE_USER_AGENT: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:12:00:00 +0000] ",
    "198.51.100.50 - 4D5E6F7081920314 REST.GET.OBJECT public/logo.png \"GET /public/logo.png HTTP/1.1\" ",
    "200 - 4096 4096 11 10 \"https://example.com/a \"b\" c\" ",
    "\"Mozilla/5.0 (Linux; Android 14; Tab 10\" Pro) \"quoted\" Safari/537.36\"\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= SigV4 TLS_AES_128_GCM_SHA256 ",
    "AuthHeader egress-data-eu.s3.eu-central-1.amazonaws.com TLSv1.3 - - eu-central-1",
);

/// A User-Agent holding `\"`, as a writer that escaped would have it.
pub const ESCAPED_QUOTE_USER_AGENT: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:12:05:00 +0000] ",
    "198.51.100.50 - 5E6F708192031425 REST.GET.OBJECT public/logo.png \"GET /public/logo.png HTTP/1.1\" ",
    "200 - 4096 4096 11 10 \"-\" \"python-requests/2.31 (build \\\"nightly\\\" 7)\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= SigV4 TLS_AES_128_GCM_SHA256 ",
    "AuthHeader egress-data-eu.s3.eu-central-1.amazonaws.com TLSv1.3 - - eu-central-1",
);

/// A request target ending in a raw quote (the key `odd"`).
pub const RAW_QUOTE_REQUEST_URI: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [14/Mar/2025:12:10:00 +0000] ",
    "198.51.100.50 - 6F70819203142536 REST.GET.OBJECT odd%2522 \"GET /egress-data-eu/odd\" HTTP/1.1\" ",
    "404 NoSuchKey 312 - 5 4 \"-\" \"curl/8.5.0\" - ",
    "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h= - - - ",
    "s3.eu-central-1.amazonaws.com - - - eu-central-1",
);

/// Lifecycle expiry: S3's own operation, key encoded once.
pub const LIFECYCLE_EXPIRY: &str = concat!(
    "5f1c0a9be2d84e7e93a1c6b0d2f4a8e1b7c3d9e5f0a2b4c6d8e0f1a3b5c7d9e1 egress-data-eu [15/Mar/2025:00:41:07 +0000] ",
    "- AmazonS3 7081920314253647 S3.EXPIRE.OBJECT tmp/100%25%20done.txt - - - - - - - - - - - - - - - - - - -",
);

pub const ALL: &[&str] = &[
    FULL,
    ENDS_AFTER_HOST_ID,
    ENDS_AFTER_TLS_VERSION,
    ENDS_AFTER_VERSION_ID,
    ENDS_AFTER_USER_AGENT,
    UNKNOWN_TRAILING,
    DASHES,
    ERROR_READ,
    ENCODED_KEY,
    TWO_TAGS,
    ENCODED_TAG,
    RAW_QUOTE_USER_AGENT,
    ESCAPED_QUOTE_USER_AGENT,
    RAW_QUOTE_REQUEST_URI,
    LIFECYCLE_EXPIRY,
];
