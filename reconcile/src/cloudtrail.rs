//! CloudTrail log files (S3 data events) and their digest files.
//!
//! A trail with S3 data events on records every `GetObject` on the buckets
//! it watches, and delivers the records to its log bucket as gzipped JSON
//! files, about every five minutes ([`layout`] says where). With log file
//! validation on, it also delivers an hourly digest file listing the log
//! files of the hour with their SHA-256 and chaining to the previous digest
//! ([`digest`]). The order of work for a reconciliation run:
//!
//! 1. list digests and log files for the window, with slack for delivery
//!    ([`layout::digest_day_prefixes`], [`layout::log_day_prefixes`],
//!    [`layout::TrailObject::parse`]);
//! 2. fetch each object and [`gunzip`] it, with a size limit;
//! 3. check the log files against the digests
//!    ([`digest::check_integrity`], on the uncompressed bytes: that is what
//!    CloudTrail hashes);
//! 4. read each log file's object reads ([`events::for_each_read`]).
//!
//! What is *not* checked here: the digests' RSA signatures. CloudTrail signs
//! each digest (`SHA256withRSA`, the signature in the object's
//! `x-amz-meta-signature` metadata) with a per-region key whose public half
//! comes from CloudTrail's `ListPublicKeys`; verifying it needs that I/O and
//! an RSA implementation, and is left to the caller. Until it is done, the
//! digest chain proves that the files agree with each other, not that AWS
//! wrote them. See [`digest`] for what that leaves open.
//!
//! Nothing here does I/O: every function takes bytes or keys and returns
//! values, so each step can be tested without S3.

use std::io::Read as _;

use flate2::read::MultiGzDecoder;

pub mod digest;
pub mod events;
pub mod layout;

/// Why a gzipped object could not be decompressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GunzipError {
    #[error("not a valid gzip stream: {0} (CloudTrail writes .json.gz; was the object changed or truncated?)")]
    Corrupt(#[source] std::io::Error),
    #[error("decompresses to more than {limit} bytes (a guard against gzip bombs: raise it if files are that large)")]
    TooLarge { limit: u64 },
}

/// Decompresses a gzip object (all its members) into memory, refusing to
/// produce more than `max_uncompressed` bytes: a small object that inflates
/// without end fails with [`GunzipError::TooLarge`] once past the limit, and
/// memory never holds much more than the limit.
pub fn gunzip(compressed: &[u8], max_uncompressed: u64) -> Result<Vec<u8>, GunzipError> {
    let mut uncompressed = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    MultiGzDecoder::new(compressed)
        .take(max_uncompressed.saturating_add(1))
        .read_to_end(&mut uncompressed)
        .map_err(GunzipError::Corrupt)?;
    if uncompressed.len() as u64 > max_uncompressed {
        return Err(GunzipError::TooLarge { limit: max_uncompressed });
    }
    Ok(uncompressed)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzip_round_trips() {
        let content = b"{\"Records\":[]}".repeat(1000);
        assert_eq!(gunzip(&gzip(&content), content.len() as u64).unwrap(), content);
    }

    #[test]
    fn gunzip_reads_every_member() {
        let mut two = gzip(b"{\"Records\":");
        two.extend(gzip(b"[]}"));
        assert_eq!(gunzip(&two, 1024).unwrap(), b"{\"Records\":[]}");
    }

    #[test]
    fn gunzip_stops_a_bomb_at_the_limit() {
        // 64 MiB of zeros is about 64 KiB of gzip.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        assert!(matches!(gunzip(&bomb, 1 << 20), Err(GunzipError::TooLarge { limit }) if limit == 1 << 20));
        assert!(matches!(gunzip(&bomb, (64 << 20) - 1), Err(GunzipError::TooLarge { .. })));
        assert_eq!(gunzip(&bomb, 64 << 20).unwrap().len(), 64 << 20);
    }

    #[test]
    fn gunzip_refuses_what_is_not_gzip() {
        assert!(matches!(gunzip(b"{\"Records\":[]}", 1024), Err(GunzipError::Corrupt(_))));
        assert!(matches!(gunzip(b"", 1024), Err(GunzipError::Corrupt(_))));
        let mut truncated = gzip(&b"0123456789".repeat(100));
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(gunzip(&truncated, 1 << 20), Err(GunzipError::Corrupt(_))));
    }
}
