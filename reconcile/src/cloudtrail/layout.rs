//! Where a trail puts its files in the log bucket, and what a key says.
//!
//! ```text
//! [prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
//!     <account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<unique>.json.gz
//! [prefix/]AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/
//!     <account>_CloudTrail-Digest_<region>_<trail>_<home region>_YYYYMMDDTHHmmssZ[_backfill].json.gz
//! ```
//!
//! Dates are UTC. A log file's folder and stamp are those of its delivery,
//! minutes after its newest event; a digest's are those of the end of the
//! hour it covers. So a window of event times `[since, until)` is fully
//! covered only by listing some slack past `until` (CloudTrail documents
//! delivery within about 15 minutes; digests come hourly).
//!
//! Organization trails put the organization's id after `AWSLogs/`. Their
//! keys parse; the prefix builders here make only the single-account layout.

use crate::civil;

/// One listing prefix per UTC day touched by `[since_micros, until_micros)`,
/// oldest first: `[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`.
/// `prefix` is the trail's S3 key prefix, empty when it has none; a trailing
/// `/` is optional. Empty when `until_micros <= since_micros`.
#[must_use]
pub fn log_day_prefixes(
    prefix: &str,
    account: &str,
    region: &str,
    since_micros: u64,
    until_micros: u64,
) -> Vec<String> {
    day_prefixes(prefix, account, LOG_FOLDER, region, since_micros, until_micros)
}

/// Like [`log_day_prefixes`], for digest files:
/// `[prefix/]AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/`.
#[must_use]
pub fn digest_day_prefixes(
    prefix: &str,
    account: &str,
    region: &str,
    since_micros: u64,
    until_micros: u64,
) -> Vec<String> {
    day_prefixes(prefix, account, DIGEST_FOLDER, region, since_micros, until_micros)
}

const LOG_FOLDER: &str = "CloudTrail";
const DIGEST_FOLDER: &str = "CloudTrail-Digest";

fn day_prefixes(prefix: &str, account: &str, folder: &str, region: &str, since: u64, until: u64) -> Vec<String> {
    if until <= since {
        return Vec::new();
    }
    let prefix = prefix.trim_end_matches('/');
    let separator = if prefix.is_empty() { "" } else { "/" };
    (civil::day_of(since)..=civil::day_of(until - 1))
        .map(|day| format!("{prefix}{separator}AWSLogs/{account}/{folder}/{region}/{}/", civil::day_path(day)))
        .collect()
}

/// A key of the trail layout, taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailObject<'k> {
    /// A log file; `time_micros` is its name's stamp, to the minute.
    LogFile { account: &'k str, region: &'k str, time_micros: u64 },
    /// A digest file; `end_micros` is its name's stamp, the end of the hour
    /// it covers. `region` is where it was delivered from, `home_region`
    /// the trail's (they differ for a multi-region trail). A backfill digest
    /// lists log files an earlier digest missed.
    Digest { account: &'k str, region: &'k str, trail: &'k str, home_region: &'k str, end_micros: u64, backfill: bool },
}

impl<'k> TrailObject<'k> {
    /// Takes a key apart; `None` if it is not a log file or digest key of
    /// the layout above (listings hold other objects too).
    #[must_use]
    pub fn parse(key: &'k str) -> Option<TrailObject<'k>> {
        let mut segments = key.rsplitn(8, '/');
        let (file, day, month, year, region, folder, account, above) = (
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
        );
        if !under_aws_logs(above) || account.is_empty() || region.is_empty() {
            return None;
        }
        if year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        civil::parse_iso8601_micros(&format!("{year}-{month}-{day}T00:00:00Z"))?;
        let name = file.strip_suffix(".json.gz")?;
        let stamped = name.strip_prefix(account)?.strip_prefix('_')?.strip_prefix(folder)?.strip_prefix('_')?;
        let rest = stamped.strip_prefix(region)?.strip_prefix('_')?;
        match folder {
            LOG_FOLDER => {
                // `_<unique>` after the stamp; older files have no `_`.
                let stamp = rest.get(..14)?;
                let unique = rest.get(14..)?;
                let unique = unique.strip_prefix('_').unwrap_or(unique);
                if unique.is_empty() || !unique.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                Some(TrailObject::LogFile { account, region, time_micros: civil::parse_compact_micros(stamp)? })
            }
            DIGEST_FOLDER => {
                // Trail names may hold `_`, so the name is read from its end.
                let (rest, backfill) = match rest.strip_suffix("_backfill") {
                    Some(rest) => (rest, true),
                    None => (rest, false),
                };
                let (rest, stamp) = rest.rsplit_once('_')?;
                let (trail, home_region) = rest.rsplit_once('_')?;
                if trail.is_empty() || home_region.is_empty() || stamp.len() != 16 {
                    return None;
                }
                let end_micros = civil::parse_compact_micros(stamp)?;
                Some(TrailObject::Digest { account, region, trail, home_region, end_micros, backfill })
            }
            _ => None,
        }
    }

    /// The time in the object's name.
    #[must_use]
    pub fn time_micros(&self) -> u64 {
        match *self {
            TrailObject::LogFile { time_micros, .. } => time_micros,
            TrailObject::Digest { end_micros, .. } => end_micros,
        }
    }
}

/// Whether the path above `<account>/` ends in `AWSLogs` or, for an
/// organization trail, `AWSLogs/o-<id>`.
fn under_aws_logs(above: &str) -> bool {
    let mut up = above.rsplit('/');
    match up.next() {
        Some("AWSLogs") => true,
        Some(org) if org.starts_with("o-") => up.next() == Some("AWSLogs"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> u64 {
        civil::parse_iso8601_micros(text).unwrap()
    }

    #[test]
    fn one_prefix_per_day_across_a_year_end() {
        let prefixes =
            log_day_prefixes("", "210987654321", "eu-west-1", at("2026-12-30T23:00:00Z"), at("2027-01-02T00:00:01Z"));
        assert_eq!(
            prefixes,
            [
                "AWSLogs/210987654321/CloudTrail/eu-west-1/2026/12/30/",
                "AWSLogs/210987654321/CloudTrail/eu-west-1/2026/12/31/",
                "AWSLogs/210987654321/CloudTrail/eu-west-1/2027/01/01/",
                "AWSLogs/210987654321/CloudTrail/eu-west-1/2027/01/02/",
            ]
        );
    }

    #[test]
    fn until_is_exclusive_and_the_prefix_slash_optional() {
        let (since, until) = (at("2028-02-28T12:00:00Z"), at("2028-03-01T00:00:00Z"));
        let expected = [
            "trails/AWSLogs/1/CloudTrail-Digest/us-east-1/2028/02/28/",
            "trails/AWSLogs/1/CloudTrail-Digest/us-east-1/2028/02/29/",
        ];
        assert_eq!(digest_day_prefixes("trails", "1", "us-east-1", since, until), expected);
        assert_eq!(digest_day_prefixes("trails/", "1", "us-east-1", since, until), expected);
        assert_eq!(digest_day_prefixes("", "1", "us-east-1", since, since + 1).len(), 1);
        assert!(log_day_prefixes("", "1", "us-east-1", since, since).is_empty());
        assert!(log_day_prefixes("", "1", "us-east-1", until, since).is_empty());
    }

    #[test]
    fn log_file_keys() {
        let key = "trails/AWSLogs/210987654321/CloudTrail/eu-west-1/2026/12/03/\
                   210987654321_CloudTrail_eu-west-1_20261203T1005Z_Xy7pQ2rS9tUvW0aB.json.gz";
        assert_eq!(
            TrailObject::parse(key),
            Some(TrailObject::LogFile {
                account: "210987654321",
                region: "eu-west-1",
                time_micros: at("2026-12-03T10:05:00Z")
            })
        );
        // The older form without `_` before the unique part, and no prefix.
        let key = "AWSLogs/210987654321/CloudTrail/eu-west-1/2026/12/03/\
                   210987654321_CloudTrail_eu-west-1_20261203T1005ZXy7pQ2rS9tUvW0aB.json.gz";
        assert_eq!(TrailObject::parse(key).map(|o| o.time_micros()), Some(at("2026-12-03T10:05:00Z")));
        // An organization trail.
        let key = "AWSLogs/o-abc123def4/210987654321/CloudTrail/eu-west-1/2026/12/03/\
                   210987654321_CloudTrail_eu-west-1_20261203T1005Z_Xy7pQ2rS9tUvW0aB.json.gz";
        assert!(matches!(TrailObject::parse(key), Some(TrailObject::LogFile { account: "210987654321", .. })));
    }

    #[test]
    fn digest_keys() {
        let key = "AWSLogs/210987654321/CloudTrail-Digest/eu-west-1/2026/12/03/\
                   210987654321_CloudTrail-Digest_eu-west-1_data_reads_us-east-1_20261203T110012Z.json.gz";
        assert_eq!(
            TrailObject::parse(key),
            Some(TrailObject::Digest {
                account: "210987654321",
                region: "eu-west-1",
                trail: "data_reads",
                home_region: "us-east-1",
                end_micros: at("2026-12-03T11:00:12Z"),
                backfill: false,
            })
        );
        let backfill = key.replace(".json.gz", "_backfill.json.gz");
        assert!(matches!(
            TrailObject::parse(&backfill),
            Some(TrailObject::Digest { backfill: true, trail: "data_reads", .. })
        ));
    }

    #[test]
    fn other_keys_are_not_trail_objects() {
        for key in [
            "",
            "AWSLogs/",
            "AWSLogs/210987654321/CloudTrail/eu-west-1/2026/12/03/",
            // Folder and name disagree on the kind, the region or the account.
            "AWSLogs/1/CloudTrail/eu-west-1/2026/12/03/1_CloudTrail-Digest_eu-west-1_t_eu-west-1_20261203T110012Z.json.gz",
            "AWSLogs/1/CloudTrail/eu-west-1/2026/12/03/1_CloudTrail_us-east-1_20261203T1005Z_abc.json.gz",
            "AWSLogs/1/CloudTrail/eu-west-1/2026/12/03/2_CloudTrail_eu-west-1_20261203T1005Z_abc.json.gz",
            // Not under AWSLogs, an impossible date, no unique part, not gzipped, a bad stamp.
            "Logs/1/CloudTrail/eu-west-1/2026/12/03/1_CloudTrail_eu-west-1_20261203T1005Z_abc.json.gz",
            "AWSLogs/1/CloudTrail/eu-west-1/2026/02/30/1_CloudTrail_eu-west-1_20261203T1005Z_abc.json.gz",
            "AWSLogs/1/CloudTrail/eu-west-1/2026/12/03/1_CloudTrail_eu-west-1_20261203T1005Z.json.gz",
            "AWSLogs/1/CloudTrail/eu-west-1/2026/12/03/1_CloudTrail_eu-west-1_20261203T1005Z_abc.json",
            "AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/12/03/1_CloudTrail-Digest_eu-west-1_t_eu-west-1_20261203T1100Z.json.gz",
            "AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/12/03/1_CloudTrail-Digest_eu-west-1_eu-west-1_20261203T110012Z.json.gz",
            "AWSLogs/1/CloudTrail/eu-west-1/2026/12/03/1_CloudTrail_eu-west-1_2026120\u{e9}T1005Z_abc.json.gz",
        ] {
            assert_eq!(TrailObject::parse(key), None, "{key:?}");
        }
    }

    #[test]
    fn listed_keys_parse_back_to_their_day() {
        let since = at("2026-12-03T00:00:00Z");
        for prefix in log_day_prefixes("p", "7", "ap-south-1", since, since + 3 * civil::MICROS_PER_DAY) {
            let stamp = prefix.split('/').rev().skip(1).take(3).collect::<Vec<_>>().join("");
            let (day, month, year) = (&stamp[..2], &stamp[2..4], &stamp[4..]);
            let key = format!("{prefix}7_CloudTrail_ap-south-1_{year}{month}{day}T2359Z_u1.json.gz");
            let object = TrailObject::parse(&key).unwrap();
            assert_eq!(civil::day_path(civil::day_of(object.time_micros())), format!("{year}/{month}/{day}"));
        }
    }
}
