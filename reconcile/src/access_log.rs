//! S3 server access logs: the line parser and the log object key layouts.
//!
//! S3 delivers access logs best effort, usually within hours, as objects of
//! newline-separated records under the logging configuration's prefix
//! ([`layout`]). A record ([`line`](mod@line)) is one request to the logged bucket;
//! the reconciliation keeps the object reads ([`AccessLogLine::object_read`],
//! operation `REST.GET.OBJECT`) as [`AwsRead`](crate::AwsRead)s.
//!
//! What AWS documents, and what logs show beyond it:
//! - fields are space-separated, `-` when empty or not applicable; the time
//!   is bracketed, the Request-URI, Referer and User-Agent quoted (or a bare
//!   `-`; `"-"` occurs too);
//! - quotes inside those three are not escaped: a client's `"` is logged
//!   as it came, so the parser closes a quoted field where what follows
//!   reads as the next fields (see [`line`](mod@line));
//! - the key is URL-encoded, twice for client requests (`a b` is logged as
//!   `a%2520b`), once for S3's own lifecycle and batch-delete records;
//! - AWS appends fields over the years (signature version, cipher suite,
//!   ..., TLS version, access point ARN, aclRequired, a Region): older
//!   records stop earlier, and a parser must accept fields it does not know;
//! - the proxy's request id travels in the Request-URI as the query
//!   parameter [`TAG_PARAM`](crate::aws_read::TAG_PARAM), which S3 ignores
//!   (it begins with `x-`) but logs.
//!
//! Which objects to read: a log object's name carries a time, but not the
//! records' — in the simple layout it is the delivery time; in the
//! partitioned layout it is the delivery time or the records' event day,
//! as the bucket's logging configuration says (`PartitionDateSource`).
//! A record is always delivered after it happened, so listing from a time
//! `T` ([`simple_start_after`], [`partitioned_day_prefixes`]) finds every
//! record from `T` on, plus older ones: the reader keeps or drops each
//! record by its own time, never by its object's name.

#[cfg(test)]
mod corpus;
pub mod layout;
pub mod line;
mod read;

pub use layout::{KeyLayout, LogKey, parse_log_key, partitioned_day_prefixes, simple_start_after};
pub use line::{AccessLogLine, LineError, parse_line};
pub use read::{OBJECT_READ, OBJECT_READS};
