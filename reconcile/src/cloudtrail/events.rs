//! The `Records` of one CloudTrail log file, read as the object reads they
//! record.
//!
//! A log file (once gunzipped, see [`gunzip`](super::gunzip)) is one JSON
//! object `{"Records": [...]}`. The array is walked element by element with
//! a serde visitor: each record is deserialized into a lean struct that
//! borrows its strings from the input and skips every field it does not
//! name, so memory is the input plus one record, whatever the file's size.
//!
//! A record is an object read when `eventSource` is `s3.amazonaws.com` and
//! `eventName` is `GetObject`; it becomes an [`AwsRead`]. Every other record
//! (management events, `PutObject`, `HeadObject`, other services' data
//! events) is skipped and counted. A read record without `requestID`,
//! `requestParameters.bucketName`, `requestParameters.key` or a readable
//! `eventTime` is counted as malformed, as is an element of `Records` that
//! is not an object.
//!
//! The fields are read leniently: a trail mixes services, and the same name
//! holds different shapes in different services (`DynamoDB`'s
//! `requestParameters.key` is an object), so a field of an unexpected type
//! reads as absent rather than failing the file. What does fail the file:
//! input that is not JSON, a top level without a `Records` array, and a
//! record naming one of the fields read here twice. A log file is AWS's own
//! output, checked against its digest, so such a failure means the format
//! changed and deserves a loud error, not a quiet skip.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::aws_read::{AwsRead, LogSource};
use crate::civil;

/// `eventSource` of S3's events.
const S3_EVENT_SOURCE: &str = "s3.amazonaws.com";
/// `eventName` of an object read.
const GET_OBJECT: &str = "GetObject";

/// Why a log file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    #[error("not a CloudTrail log file: {0} (expected gunzipped JSON from AWSLogs/<account>/CloudTrail/)")]
    Json(#[from] serde_json::Error),
    #[error("not a CloudTrail log file: the top-level object has no \"Records\" array")]
    NoRecords,
}

/// What one log file held, beyond its reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogFileSummary {
    /// Elements of `Records`.
    pub records: usize,
    /// Records that became an [`AwsRead`].
    pub reads: usize,
    /// Records that are not S3 `GetObject` events.
    pub skipped: usize,
    /// S3 `GetObject` records lacking what a read needs, and elements that
    /// are not objects.
    pub malformed: usize,
    /// The oldest `eventTime` of any record, read or not: with
    /// `newest_event_micros`, the span of time this file speaks for.
    pub oldest_event_micros: Option<u64>,
    pub newest_event_micros: Option<u64>,
}

/// A log file's reads, collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileReads {
    pub reads: Vec<AwsRead>,
    pub summary: LogFileSummary,
}

/// Reads a gunzipped log file and collects its reads. Memory is bounded by
/// the file: use [`for_each_read`] to hand each read on instead.
pub fn parse_log_file(json: &[u8]) -> Result<LogFileReads, EventsError> {
    let mut reads = Vec::new();
    let summary = for_each_read(json, |read| reads.push(read))?;
    Ok(LogFileReads { reads, summary })
}

/// Reads a gunzipped log file, calling `on_read` with each object read in
/// file order, and returns the file's counts. On an error, `on_read` may
/// already have seen some of the file's reads.
pub fn for_each_read(json: &[u8], mut on_read: impl FnMut(AwsRead)) -> Result<LogFileSummary, EventsError> {
    let mut summary = LogFileSummary::default();
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let had_records =
        LogFileSeed { tally: Tally { summary: &mut summary, on_read: &mut on_read } }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    if !had_records {
        return Err(EventsError::NoRecords);
    }
    Ok(summary)
}

/// Where records go as they are read.
struct Tally<'t> {
    summary: &'t mut LogFileSummary,
    on_read: &'t mut dyn FnMut(AwsRead),
}

impl Tally<'_> {
    fn reborrow(&mut self) -> Tally<'_> {
        Tally { summary: &mut *self.summary, on_read: &mut *self.on_read }
    }

    fn record(&mut self, record: Option<Record<'_>>) {
        let summary = &mut *self.summary;
        summary.records += 1;
        let Some(record) = record else {
            summary.malformed += 1;
            return;
        };
        let time = record.event_time.as_str().and_then(civil::parse_iso8601_micros);
        if let Some(time) = time {
            summary.oldest_event_micros = Some(summary.oldest_event_micros.map_or(time, |t| t.min(time)));
            summary.newest_event_micros = Some(summary.newest_event_micros.map_or(time, |t| t.max(time)));
        }
        if record.event_source.as_str() != Some(S3_EVENT_SOURCE) || record.event_name.as_str() != Some(GET_OBJECT) {
            summary.skipped += 1;
            return;
        }
        match record.into_read(time) {
            Some(read) => {
                summary.reads += 1;
                (self.on_read)(read);
            }
            None => summary.malformed += 1,
        }
    }
}

/// The top-level object: walks `Records`, skips every other member.
/// Yields whether `Records` was there.
struct LogFileSeed<'t> {
    tally: Tally<'t>,
}

impl<'de> DeserializeSeed<'de> for LogFileSeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogFileSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a \"Records\" array")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<bool, A::Error> {
        let mut had_records = false;
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if name == "Records" {
                map.next_value_seed(RecordsSeed { tally: self.tally.reborrow() })?;
                had_records = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(had_records)
    }
}

/// The `Records` array: one [`Record`] at a time.
struct RecordsSeed<'t> {
    tally: Tally<'t>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Object(record)) = seq.next_element::<Object<Record<'de>>>()? {
            self.tally.record(record);
        }
        Ok(())
    }
}

/// The fields of a record this module reads; the rest are skipped unread.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    #[serde(borrow, default)]
    event_time: Scalar<'a>,
    #[serde(borrow, default)]
    event_source: Scalar<'a>,
    #[serde(borrow, default)]
    event_name: Scalar<'a>,
    #[serde(rename = "requestID", borrow, default)]
    request_id: Scalar<'a>,
    #[serde(rename = "sourceIPAddress", borrow, default)]
    source_ip_address: Scalar<'a>,
    #[serde(borrow, default)]
    user_agent: Scalar<'a>,
    #[serde(borrow, default)]
    error_code: Scalar<'a>,
    #[serde(borrow, default)]
    user_identity: Object<UserIdentity<'a>>,
    #[serde(borrow, default)]
    request_parameters: Object<RequestParameters<'a>>,
    #[serde(borrow, default)]
    additional_event_data: Object<AdditionalEventData<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(rename = "type", borrow, default)]
    identity_type: Scalar<'a>,
    #[serde(borrow, default)]
    arn: Scalar<'a>,
    #[serde(borrow, default)]
    access_key_id: Scalar<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestParameters<'a> {
    #[serde(borrow, default)]
    bucket_name: Scalar<'a>,
    #[serde(borrow, default)]
    key: Scalar<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdditionalEventData<'a> {
    #[serde(borrow, default)]
    bytes_transferred_out: Scalar<'a>,
}

impl Record<'_> {
    /// The read this `GetObject` record describes, or `None` if it lacks
    /// what identifies one.
    fn into_read(self, time_micros: Option<u64>) -> Option<AwsRead> {
        let identity = self.user_identity.0;
        let parameters = self.request_parameters.0?;
        let (identity_type, requester, access_key_id) = match identity {
            Some(id) => (id.identity_type.into_text(), id.arn.into_text(), id.access_key_id.into_text()),
            None => (None, None, None),
        };
        Some(AwsRead {
            source: LogSource::Cloudtrail,
            request_id: self.request_id.into_text()?,
            time_micros: time_micros?,
            bucket: parameters.bucket_name.into_text()?,
            key: parameters.key.into_text()?,
            requester,
            identity_type,
            access_key_id,
            source_ip: self.source_ip_address.into_text(),
            user_agent: self.user_agent.into_text(),
            status: None,
            error_code: self.error_code.into_text(),
            bytes_sent: self.additional_event_data.0.and_then(|data| data.bytes_transferred_out.as_byte_count()),
            object_size: None,
            tag: None,
        })
    }
}

/// A leaf field read leniently: a string (borrowed when the JSON has no
/// escapes), a non-negative number, or — for anything else, null or absent —
/// nothing.
#[derive(Debug, Default, PartialEq)]
enum Scalar<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Integer(u64),
    Float(f64),
}

impl Scalar<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The string, if it is one and not empty (CloudTrail writes `""` for
    /// some identities' `accessKeyId`).
    fn into_text(self) -> Option<String> {
        match self {
            Scalar::Text(text) if !text.is_empty() => Some(text.into_owned()),
            _ => None,
        }
    }

    /// A count of bytes: an integer, or a float that is exactly one
    /// (CloudTrail has written `bytesTransferredOut` as `3.0`).
    fn as_byte_count(&self) -> Option<u64> {
        // 2^64: every f64 below it that is integral converts to u64 exactly.
        const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
        match *self {
            Scalar::Integer(n) => Some(n),
            #[allow(clippy::cast_sign_loss, reason = "the value is checked to be integral and in 0..2^64")]
            Scalar::Float(x) if (0.0..TWO_POW_64).contains(&x) && x.fract() == 0.0 => Some(x as u64),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Integer(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'a>, E> {
        Ok(u64::try_from(v).map_or(Scalar::Absent, Scalar::Integer))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Absent)
    }

    fn visit_unit<E>(self) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Absent)
    }

    fn visit_none<E>(self) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Absent)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar<'a>, D::Error> {
        Scalar::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'a>, A::Error> {
        skip_seq(seq).map(|()| Scalar::Absent)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'a>, A::Error> {
        skip_map(map).map(|()| Scalar::Absent)
    }
}

/// A nested object read leniently: `Some` if the value is an object, `None`
/// for anything else (null, absent, a string, an array).
struct Object<T>(Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Object(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|value| Object(Some(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Object<T>, A::Error> {
        skip_seq(seq).map(|()| Object(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Object<T>, D::Error> {
        Object::deserialize(deserializer)
    }

    fn visit_none<E>(self) -> Result<Object<T>, E> {
        Ok(Object(None))
    }

    fn visit_unit<E>(self) -> Result<Object<T>, E> {
        Ok(Object(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Object<T>, E> {
        Ok(Object(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Object<T>, E> {
        Ok(Object(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Object<T>, E> {
        Ok(Object(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Object<T>, E> {
        Ok(Object(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Object<T>, E> {
        Ok(Object(None))
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// A `GetObject` record as CloudTrail shapes one; fields are patched per test.
    fn get_object(request_id: &str, time: &str, key: &str) -> Value {
        json!({
            "eventVersion": "1.10",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEPRINCIPAL",
                "arn": "arn:aws:iam::210987654321:user/batch-reader",
                "accountId": "210987654321",
                "accessKeyId": "AKIAEXAMPLEREADER01",
                "userName": "batch-reader"
            },
            "eventTime": time,
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "198.51.100.23",
            "userAgent": "[aws-sdk-rust/1.3.0 os/linux]",
            "requestParameters": {
                "bucketName": "datasets-prod",
                "Host": "datasets-prod.s3.eu-west-1.amazonaws.com",
                "key": key
            },
            "responseElements": null,
            "additionalEventData": {"SignatureVersion": "SigV4", "bytesTransferredIn": 0, "bytesTransferredOut": 4096},
            "requestID": request_id,
            "eventID": "0f6c2f1e-2d1b-4bd0-9b8e-5a8c1d2e3f40",
            "readOnly": true,
            "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::datasets-prod/x"}],
            "eventType": "AwsApiCall",
            "managementEvent": false,
            "recipientAccountId": "210987654321",
            "eventCategory": "Data"
        })
    }

    fn log_file(records: &[Value]) -> Vec<u8> {
        serde_json::to_vec(&json!({ "Records": records })).unwrap()
    }

    fn sample_records() -> Vec<Value> {
        let iam_user = get_object("REQ0001", "2026-12-03T10:00:00Z", "train/part-0001.parquet");

        let mut assumed_role = get_object("REQ0002", "2026-12-03T10:02:30Z", "train/part-0002.parquet");
        assumed_role["userIdentity"] = json!({
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEROLE:etl-session",
            "arn": "arn:aws:sts::210987654321:assumed-role/etl/etl-session",
            "accountId": "210987654321",
            "accessKeyId": "ASIAEXAMPLESESSION1",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::210987654321:role/etl"}}
        });
        assumed_role["additionalEventData"]["bytesTransferredOut"] = json!(3.0);

        let mut denied = get_object("REQ0003", "2026-12-03T09:58:00Z", "secret/keys.csv");
        denied["errorCode"] = json!("AccessDenied");
        denied["errorMessage"] = json!("Access Denied");
        denied["additionalEventData"] = json!({"SignatureVersion": "SigV4", "bytesTransferredIn": 0});

        let mut put = get_object("REQ0004", "2026-12-03T10:03:00Z", "out/result.json");
        put["eventName"] = json!("PutObject");

        let management = json!({
            "eventVersion": "1.10",
            "userIdentity": {"type": "Root", "arn": "arn:aws:iam::210987654321:root"},
            "eventTime": "2026-12-03T10:05:00Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": "DescribeInstances",
            "requestParameters": null,
            "responseElements": null,
            "requestID": "a1b2c3d4-0000-4000-8000-000000000001",
            "managementEvent": true
        });

        let mut no_request_id = get_object("unused", "2026-12-03T10:01:00Z", "train/part-0003.parquet");
        no_request_id.as_object_mut().unwrap().remove("requestID");

        vec![iam_user, assumed_role, denied, put, management, no_request_id]
    }

    #[test]
    fn reads_getobject_records_and_counts_the_rest() {
        let parsed = parse_log_file(&log_file(&sample_records())).unwrap();
        assert_eq!(
            parsed.summary,
            LogFileSummary {
                records: 6,
                reads: 3,
                skipped: 2,
                malformed: 1,
                oldest_event_micros: civil::parse_iso8601_micros("2026-12-03T09:58:00Z"),
                newest_event_micros: civil::parse_iso8601_micros("2026-12-03T10:05:00Z"),
            }
        );
        let [iam_user, assumed_role, denied] = parsed.reads.try_into().unwrap();
        assert_eq!(
            iam_user,
            AwsRead {
                source: LogSource::Cloudtrail,
                request_id: "REQ0001".into(),
                time_micros: civil::parse_iso8601_micros("2026-12-03T10:00:00Z").unwrap(),
                bucket: "datasets-prod".into(),
                key: "train/part-0001.parquet".into(),
                requester: Some("arn:aws:iam::210987654321:user/batch-reader".into()),
                identity_type: Some("IAMUser".into()),
                access_key_id: Some("AKIAEXAMPLEREADER01".into()),
                source_ip: Some("198.51.100.23".into()),
                user_agent: Some("[aws-sdk-rust/1.3.0 os/linux]".into()),
                status: None,
                error_code: None,
                bytes_sent: Some(4096),
                object_size: None,
                tag: None,
            }
        );
        assert!(iam_user.succeeded());

        assert_eq!(assumed_role.identity_type.as_deref(), Some("AssumedRole"));
        assert_eq!(assumed_role.requester.as_deref(), Some("arn:aws:sts::210987654321:assumed-role/etl/etl-session"));
        assert_eq!(assumed_role.access_key_id.as_deref(), Some("ASIAEXAMPLESESSION1"));
        assert_eq!(assumed_role.bytes_sent, Some(3), "3.0 is exactly 3 bytes");

        assert_eq!(denied.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(denied.bytes_sent, None);
        assert!(!denied.succeeded());
    }

    #[test]
    fn for_each_read_hands_reads_on_in_file_order() {
        let mut ids = Vec::new();
        let summary = for_each_read(&log_file(&sample_records()), |read| ids.push(read.request_id)).unwrap();
        assert_eq!(ids, ["REQ0001", "REQ0002", "REQ0003"]);
        assert_eq!(summary.reads, 3);
    }

    #[test]
    fn byte_counts_only_when_exact() {
        for (value, expected) in [
            (json!(0), Some(0)),
            (json!(12_345), Some(12_345)),
            (json!(7.0), Some(7)),
            (json!(2.5), None),
            (json!(-1), None),
            (json!(-4.0), None),
            (json!(1.0e300), None),
            (json!("4096"), None),
            (json!(null), None),
        ] {
            let mut record = get_object("REQ", "2026-12-03T10:00:00Z", "k");
            record["additionalEventData"]["bytesTransferredOut"] = value.clone();
            let read = parse_log_file(&log_file(&[record])).unwrap().reads.pop().unwrap();
            assert_eq!(read.bytes_sent, expected, "{value}");
        }
    }

    #[test]
    fn a_read_lacking_an_identifying_field_is_malformed() {
        let mut missing_bucket = get_object("REQ1", "2026-12-03T10:00:00Z", "k");
        missing_bucket["requestParameters"].as_object_mut().unwrap().remove("bucketName");
        let mut missing_key = get_object("REQ2", "2026-12-03T10:00:00Z", "k");
        missing_key["requestParameters"]["key"] = json!({"nested": true});
        let mut no_parameters = get_object("REQ3", "2026-12-03T10:00:00Z", "k");
        no_parameters["requestParameters"] = Value::Null;
        let bad_time = get_object("REQ4", "yesterday", "k");
        let mut numeric_id = get_object("REQ5", "2026-12-03T10:00:00Z", "k");
        numeric_id["requestID"] = json!(5);
        let not_an_object = json!("GetObject");

        let parsed = parse_log_file(&log_file(&[
            missing_bucket,
            missing_key,
            no_parameters,
            bad_time,
            numeric_id,
            not_an_object,
        ]))
        .unwrap();
        assert!(parsed.reads.is_empty());
        assert_eq!((parsed.summary.records, parsed.summary.malformed, parsed.summary.skipped), (6, 6, 0));
    }

    #[test]
    fn other_services_fields_of_other_shapes_are_skipped_not_fatal() {
        let dynamodb = json!({
            "eventTime": "2026-12-03T10:00:00Z",
            "eventSource": "dynamodb.amazonaws.com",
            "eventName": "GetItem",
            "requestParameters": {"tableName": "jobs", "key": {"id": {"S": "42"}}},
            "additionalEventData": "not an object",
            "userIdentity": ["neither"],
            "requestID": {"odd": 1}
        });
        let parsed = parse_log_file(&log_file(&[dynamodb])).unwrap();
        assert_eq!((parsed.summary.records, parsed.summary.skipped), (1, 1));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let record = get_object("REQ-ESCAPED", "2026-12-03T10:00:00Z", "caf\u{e9}/a\"b");
        let json = String::from_utf8(log_file(&[record])).unwrap().replace("REQ-ESCAPED", "REQ\\u002dESCAPED");
        let read = parse_log_file(json.as_bytes()).unwrap().reads.pop().unwrap();
        assert_eq!(read.key, "caf\u{e9}/a\"b");
        assert_eq!(read.request_id, "REQ-ESCAPED");
    }

    #[test]
    fn the_file_shape_is_checked() {
        assert!(matches!(parse_log_file(b"{\"Records\":[]}"), Ok(parsed) if parsed.summary.records == 0));
        assert!(parse_log_file(b"{\"Records\":[], \"x\": {\"y\": [1]}}").is_ok());
        assert!(matches!(parse_log_file(b"{}"), Err(EventsError::NoRecords)));
        assert!(matches!(parse_log_file(b"[]"), Err(EventsError::Json(_))));
        assert!(matches!(parse_log_file(b"{\"Records\": null}"), Err(EventsError::Json(_))));
        assert!(matches!(parse_log_file(b"{\"Records\":[]} trailing"), Err(EventsError::Json(_))));
        assert!(matches!(
            parse_log_file(b"{\"Records\":[{\"eventName\":\"a\",\"eventName\":\"b\"}]}"),
            Err(EventsError::Json(_))
        ));
        assert!(matches!(parse_log_file(b""), Err(EventsError::Json(_))));
    }

    #[test]
    fn gzip_round_trip() {
        let json = log_file(&sample_records());
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&json).unwrap();
        let compressed = encoder.finish().unwrap();

        let uncompressed = crate::cloudtrail::gunzip(&compressed, json.len() as u64).unwrap();
        assert_eq!(uncompressed, json);
        assert_eq!(parse_log_file(&uncompressed).unwrap().summary.reads, 3);
    }

    /// JSON values built from the names a record is read for, so that the
    /// lenient visitors meet every shape in every place.
    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let names = prop::sample::select(vec![
            "eventTime",
            "eventSource",
            "eventName",
            "requestID",
            "sourceIPAddress",
            "userAgent",
            "errorCode",
            "userIdentity",
            "type",
            "arn",
            "accessKeyId",
            "requestParameters",
            "bucketName",
            "key",
            "additionalEventData",
            "bytesTransferredOut",
            "other",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("JSON has no NaN or infinity", |x| x.is_finite()).prop_map(Value::from),
            prop::sample::select(vec!["s3.amazonaws.com", "GetObject", "2026-12-03T10:00:00Z", "", "x"])
                .prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((names.clone(), inner), 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = for_each_read(&bytes, |_| {});
        }

        #[test]
        fn never_panics_after_a_records_prefix(tail in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = br#"{"Records":[{"eventSource":"s3.amazonaws.com","eventName":"GetObject","#.to_vec();
            bytes.extend_from_slice(&tail);
            let _ = for_each_read(&bytes, |_| {});
        }

        #[test]
        fn every_record_of_valid_json_is_counted_once(records in prop::collection::vec(arbitrary_json(), 0..8)) {
            let summary = for_each_read(&log_file(&records), |_| {}).unwrap();
            prop_assert_eq!(summary.records, records.len());
            prop_assert_eq!(summary.reads + summary.skipped + summary.malformed, summary.records);
        }
    }
}
