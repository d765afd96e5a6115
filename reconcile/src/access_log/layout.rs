//! Names of the log objects S3 delivers, and what to list to find those
//! that can hold records from a time on.
//!
//! A bucket's logging configuration picks one of two layouts under its
//! destination prefix (which is used as is: `logs/` and `logs` differ):
//! - simple: `[prefix]YYYY-MM-DD-hh-mm-ss-UniqueString`, named for when S3
//!   delivered the object;
//! - partitioned: `[prefix]AccountId/Region/SourceBucket/YYYY/MM/DD/`
//!   `YYYY-MM-DD-hh-mm-ss-UniqueString`, dated by the delivery time or by the
//!   records' event day (`PartitionDateSource`), in which case the name's
//!   time is that day's midnight and the object holds that day's records.
//!
//! A name's time only narrows the listing; the reader keeps a record by the
//! record's own time.

use crate::civil::{CivilTime, MAX_SECONDS, MICROS_PER_SECOND, SECONDS_PER_DAY, digits};

/// How a log object's key is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyLayout {
    /// `[prefix]YYYY-MM-DD-hh-mm-ss-UniqueString`.
    Simple,
    /// `[prefix]AccountId/Region/SourceBucket/YYYY/MM/DD/YYYY-MM-DD-hh-mm-ss-UniqueString`.
    Partitioned {
        /// The logged bucket's account, twelve digits.
        account_id: String,
        region: String,
        /// The logged bucket (not the bucket the logs are in).
        source_bucket: String,
    },
}

/// A log object's key, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKey {
    pub layout: KeyLayout,
    /// The time in the object's name, microseconds since the epoch: when it
    /// was delivered, or (partitioned by event time) the midnight that
    /// starts the day its records are from.
    pub name_time_micros: u64,
    /// The name's last part, which makes it unique.
    pub unique: String,
}

impl LogKey {
    /// The object key this names under `prefix`, the inverse of
    /// [`parse_log_key`].
    #[must_use]
    pub fn to_key(&self, prefix: &str) -> String {
        let civil = CivilTime::from_unix_seconds(self.name_time_micros / MICROS_PER_SECOND);
        let name = format!("{}-{}", civil.dashed(), self.unique);
        match &self.layout {
            KeyLayout::Simple => format!("{prefix}{name}"),
            KeyLayout::Partitioned { account_id, region, source_bucket } => {
                format!("{}{name}", day_prefix(prefix, account_id, region, source_bucket, civil))
            }
        }
    }
}

/// The layout, time and unique part of a log object's key under `prefix`;
/// `None` for any other key (a stray object, another prefix's logs, a name
/// whose folder date disagrees with its own).
#[must_use]
pub fn parse_log_key(prefix: &str, key: &str) -> Option<LogKey> {
    let rest = key.strip_prefix(prefix)?;
    // At most one part more than a partitioned key has.
    let parts: Vec<&str> = rest.splitn(8, '/').collect();
    match parts[..] {
        [name] => {
            let (seconds, unique) = parse_name(name)?;
            Some(LogKey { layout: KeyLayout::Simple, name_time_micros: seconds * MICROS_PER_SECOND, unique })
        }
        [account_id, region, source_bucket, year, month, day, name] => {
            let (seconds, unique) = parse_name(name)?;
            let civil = CivilTime::from_unix_seconds(seconds);
            let folder_matches = (year.len(), month.len(), day.len()) == (4, 2, 2)
                && digits(year.as_bytes()) == Some(civil.year)
                && digits(month.as_bytes()) == Some(civil.month)
                && digits(day.as_bytes()) == Some(civil.day);
            let account_ok = account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit());
            let region_ok =
                !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            (folder_matches && account_ok && region_ok && !source_bucket.is_empty()).then(|| LogKey {
                layout: KeyLayout::Partitioned {
                    account_id: account_id.to_owned(),
                    region: region.to_owned(),
                    source_bucket: source_bucket.to_owned(),
                },
                name_time_micros: seconds * MICROS_PER_SECOND,
                unique,
            })
        }
        _ => None,
    }
}

/// `YYYY-MM-DD-hh-mm-ss-UniqueString`: the name's seconds and unique part.
fn parse_name(name: &str) -> Option<(u64, String)> {
    let bytes = name.as_bytes();
    let unique = name.get(20..).filter(|u| !u.is_empty())?;
    if [4, 7, 10, 13, 16, 19].iter().any(|&i| bytes.get(i) != Some(&b'-')) {
        return None;
    }
    let part = |from: usize, to: usize| digits(bytes.get(from..to)?);
    let seconds = CivilTime {
        year: part(0, 4)?,
        month: part(5, 7)?,
        day: part(8, 10)?,
        hour: part(11, 13)?,
        minute: part(14, 16)?,
        second: part(17, 19)?,
    }
    .unix_seconds()?;
    Some((seconds, unique.to_owned()))
}

/// The `StartAfter` for listing a simple layout's objects named at or after
/// `since_micros` (the second it falls in): every name from that second on
/// sorts after it. With a simple layout the name is the delivery time, and
/// a record is delivered after it happened, so the listing from `since`
/// holds every record from `since` on (and older ones the reader drops).
#[must_use]
pub fn simple_start_after(prefix: &str, since_micros: u64) -> String {
    let civil = CivilTime::from_unix_seconds(since_micros / MICROS_PER_SECOND);
    format!("{prefix}{}", civil.dashed())
}

/// The listing prefixes of a partitioned layout for the UTC days from
/// `since_micros`'s to `until_micros`'s, both included: one per day, in
/// order; none if `until` is before `since`. Within a day the reader lists
/// the whole prefix: a name partitioned by event time says midnight.
///
/// Partitioned by event time, records from `since` on are in these days'
/// folders up to the day of the last record wanted. Partitioned by delivery
/// time they can be delivered after that day, so `until` must reach past
/// the last record by the delivery delay the reader allows.
#[must_use]
pub fn partitioned_day_prefixes(
    prefix: &str,
    account_id: &str,
    region: &str,
    source_bucket: &str,
    since_micros: u64,
    until_micros: u64,
) -> Vec<String> {
    let day_of = |micros: u64| (micros / MICROS_PER_SECOND).min(MAX_SECONDS) / SECONDS_PER_DAY;
    let (first_day, last_day) = (day_of(since_micros), day_of(until_micros));
    (first_day..=last_day)
        .map(|day| {
            day_prefix(prefix, account_id, region, source_bucket, CivilTime::from_unix_seconds(day * SECONDS_PER_DAY))
        })
        .collect()
}

fn day_prefix(prefix: &str, account_id: &str, region: &str, source_bucket: &str, day: CivilTime) -> String {
    let CivilTime { year, month, day, .. } = day;
    format!("{prefix}{account_id}/{region}/{source_bucket}/{year:04}/{month:02}/{day:02}/")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ACCOUNT: &str = "111122223333";
    const REGION: &str = "eu-central-1";
    const SOURCE: &str = "egress-data-eu";

    fn micros(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> u64 {
        CivilTime { year, month, day, hour, minute, second }.unix_seconds().unwrap() * MICROS_PER_SECOND
    }

    fn partitioned() -> KeyLayout {
        KeyLayout::Partitioned { account_id: ACCOUNT.into(), region: REGION.into(), source_bucket: SOURCE.into() }
    }

    #[test]
    fn parses_a_simple_key() {
        let key = parse_log_key("logs/", "logs/2025-03-14-09-30-02-7D1E4A0B9C2F5E38").unwrap();
        assert_eq!(
            key,
            LogKey {
                layout: KeyLayout::Simple,
                name_time_micros: micros(2025, 3, 14, 9, 30, 2),
                unique: "7D1E4A0B9C2F5E38".into()
            }
        );
        assert_eq!(key.to_key("logs/"), "logs/2025-03-14-09-30-02-7D1E4A0B9C2F5E38");
        // A prefix without a slash is glued to the name.
        let glued = parse_log_key("access", "access2025-03-14-09-30-02-7D1E4A0B9C2F5E38").unwrap();
        assert_eq!(glued.layout, KeyLayout::Simple);
        assert_eq!(parse_log_key("", "2025-03-14-09-30-02-X").unwrap().unique, "X");
    }

    #[test]
    fn parses_a_partitioned_key() {
        let text = "logs/111122223333/eu-central-1/egress-data-eu/2025/03/14/2025-03-14-00-00-00-2B6C9E1F4A7D0E35";
        let key = parse_log_key("logs/", text).unwrap();
        assert_eq!(
            key,
            LogKey {
                layout: partitioned(),
                name_time_micros: micros(2025, 3, 14, 0, 0, 0),
                unique: "2B6C9E1F4A7D0E35".into()
            }
        );
        assert_eq!(key.to_key("logs/"), text);
    }

    #[test]
    fn other_keys_are_not_log_keys() {
        for key in [
            "logs/",
            "logs/2025-03-14-09-30-02",
            "logs/2025-03-14-09-30-02-",
            "logs/2025-03-14-09-30-02_7D1E",
            "logs/2025-03-14T09-30-02-7D1E",
            "logs/2025-02-30-09-30-02-7D1E",
            "logs/2025-03-14-24-30-02-7D1E",
            "logs/+025-03-14-09-30-02-7D1E",
            "logs/2025-03-14-09-30-02-7D1E/extra",
            "other/2025-03-14-09-30-02-7D1E",
            "logs/é025-03-14-09-30-02-7D1E",
            "logs/111122223333/eu-central-1/egress-data-eu/2025/03/15/2025-03-14-00-00-00-2B6C",
            "logs/111122223333/eu-central-1/egress-data-eu/2025/3/14/2025-03-14-00-00-00-2B6C",
            "logs/11112222333/eu-central-1/egress-data-eu/2025/03/14/2025-03-14-00-00-00-2B6C",
            "logs/111122223333/EU-CENTRAL-1/egress-data-eu/2025/03/14/2025-03-14-00-00-00-2B6C",
            "logs/111122223333/eu-central-1//2025/03/14/2025-03-14-00-00-00-2B6C",
            "logs/111122223333/eu-central-1/egress-data-eu/2025/03/14/",
        ] {
            assert_eq!(parse_log_key("logs/", key), None, "{key}");
        }
    }

    #[test]
    fn simple_start_after_lists_names_from_the_second_of_since() {
        let since = micros(2025, 3, 14, 9, 30, 2) + 999_999;
        let start_after = simple_start_after("logs/", since);
        assert_eq!(start_after, "logs/2025-03-14-09-30-02");
        assert!("logs/2025-03-14-09-30-02-0000000000000000".as_bytes() > start_after.as_bytes());
        assert!("logs/2025-03-14-09-30-01-FFFFFFFFFFFFFFFF".as_bytes() < start_after.as_bytes());
    }

    #[test]
    fn partitioned_day_prefixes_cover_each_utc_day() {
        let prefixes = partitioned_day_prefixes(
            "logs/",
            ACCOUNT,
            REGION,
            SOURCE,
            micros(2024, 2, 28, 23, 59, 59),
            micros(2024, 3, 1, 0, 0, 0),
        );
        assert_eq!(
            prefixes,
            [
                "logs/111122223333/eu-central-1/egress-data-eu/2024/02/28/",
                "logs/111122223333/eu-central-1/egress-data-eu/2024/02/29/",
                "logs/111122223333/eu-central-1/egress-data-eu/2024/03/01/",
            ]
        );
        let one_day = micros(2025, 3, 14, 0, 0, 0);
        assert_eq!(partitioned_day_prefixes("", ACCOUNT, REGION, SOURCE, one_day, one_day + 1).len(), 1);
        assert!(partitioned_day_prefixes("", ACCOUNT, REGION, SOURCE, one_day, one_day - 1).is_empty());
    }

    fn layouts() -> impl Strategy<Value = KeyLayout> {
        prop_oneof![
            Just(KeyLayout::Simple),
            ("[0-9]{12}", "[a-z]{2}-[a-z]{4,9}-[1-9]", "[a-z0-9][a-z0-9.-]{2,20}").prop_map(
                |(account_id, region, source_bucket)| KeyLayout::Partitioned { account_id, region, source_bucket }
            ),
        ]
    }

    proptest! {
        #[test]
        fn keys_round_trip(
            layout in layouts(),
            seconds in 0..=MAX_SECONDS,
            unique in "[0-9A-F]{16}",
            prefix in "([a-z0-9-]{1,8}/){0,2}",
        ) {
            let key = LogKey { layout, name_time_micros: seconds * MICROS_PER_SECOND, unique };
            let text = key.to_key(&prefix);
            prop_assert_eq!(parse_log_key(&prefix, &text), Some(key.clone()));
            match &key.layout {
                KeyLayout::Simple => {
                    prop_assert!(text.as_bytes() > simple_start_after(&prefix, key.name_time_micros).as_bytes());
                    let later = key.name_time_micros + MICROS_PER_SECOND;
                    prop_assert!(seconds == MAX_SECONDS || text.as_bytes() < simple_start_after(&prefix, later).as_bytes());
                }
                KeyLayout::Partitioned { account_id, region, source_bucket } => {
                    let days = partitioned_day_prefixes(
                        &prefix, account_id, region, source_bucket, key.name_time_micros, key.name_time_micros,
                    );
                    prop_assert_eq!(days.len(), 1);
                    prop_assert!(text.starts_with(&days[0]));
                }
            }
        }

        #[test]
        fn arbitrary_keys_never_panic(prefix in "\\PC{0,4}", key in "\\PC{0,80}") {
            if let Some(parsed) = parse_log_key(&prefix, &key) {
                prop_assert_eq!(parsed.to_key(&prefix), key);
            }
        }
    }
}
