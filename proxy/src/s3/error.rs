//! S3 errors as the client sees them: a status, an S3 error code and an XML
//! body. Every error the proxy itself answers goes through [`S3Error`].

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

pub use crate::error_code::ErrorCode;

/// An error answered to an S3 client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub resource: Option<String>,
    /// Seconds to send in `Retry-After` (a rate cap's `SlowDown`).
    pub retry_after: Option<u64>,
}

impl S3Error {
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error { status: code.status(), code, message: message.into(), resource: None, retry_after: None }
    }

    /// The ledger cannot record: fail closed.
    #[must_use]
    pub fn ledger_unavailable() -> S3Error {
        S3Error::new(
            ErrorCode::ServiceUnavailable,
            "The request cannot be recorded in the egress ledger right now, so it is refused. Retry later.",
        )
    }

    #[must_use]
    pub fn upstream_unreachable(detail: &str) -> S3Error {
        S3Error::new(ErrorCode::BadGateway, format!("The upstream S3 endpoint could not be reached: {detail}"))
    }

    /// An upload that sent nothing for `idle`: what S3 answers then.
    #[must_use]
    pub fn request_timeout(idle: std::time::Duration) -> S3Error {
        S3Error::new(
            ErrorCode::RequestTimeout,
            format!(
                "Your socket connection to the server was not read from or written to within the timeout period \
                 ({} s).",
                idle.as_secs()
            ),
        )
    }

    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> S3Error {
        self.retry_after = Some(seconds);
        self
    }

    #[must_use]
    pub fn with_resource(mut self, resource: impl Into<String>) -> S3Error {
        self.resource = Some(resource.into());
        self
    }

    /// The XML body S3 sends for an error.
    #[must_use]
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        xml.push_str(self.code.as_str());
        xml.push_str("</Code><Message>");
        escape_into(&mut xml, &self.message);
        xml.push_str("</Message>");
        if let Some(resource) = &self.resource {
            xml.push_str("<Resource>");
            escape_into(&mut xml, resource);
            xml.push_str("</Resource>");
        }
        xml.push_str("<RequestId>");
        escape_into(&mut xml, request_id);
        xml.push_str("</RequestId></Error>");
        xml
    }

    /// The full response; HEAD responses carry no body, as in S3.
    #[must_use]
    pub fn to_response(&self, request_id: &str, head: bool) -> Response<Bytes> {
        let body = if head { Bytes::new() } else { Bytes::from(self.to_xml(request_id)) };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        if let Some(seconds) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-amz-request-id", id.clone());
            headers.insert(crate::REQUEST_ID_HEADER, id);
        }
        response
    }
}

/// Longest S3 error code taken from an upstream answer; real ones are
/// shorter than 40 characters.
const MAX_CODE_LEN: usize = 64;

/// The S3 error code in (the start of) an error body from the upstream:
/// the text of its first `<Code>` element, if it looks like one (letters,
/// digits, `.`, `_`, `-`). Nothing is invented from a body that is not an
/// S3 error.
#[must_use]
pub fn code_in(xml: &[u8]) -> Option<String> {
    const OPEN: &[u8] = b"<Code>";
    let start = xml.windows(OPEN.len()).position(|w| w == OPEN)? + OPEN.len();
    let rest = &xml[start..];
    let len = rest.iter().position(|&b| b == b'<')?;
    let code = std::str::from_utf8(&rest[..len]).ok()?.trim();
    let plausible = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    (!code.is_empty() && code.len() <= MAX_CODE_LEN && code.chars().all(plausible)).then(|| code.to_owned())
}

impl From<&crate::auth::AuthError> for S3Error {
    fn from(error: &crate::auth::AuthError) -> S3Error {
        S3Error::new(error.code(), error.to_string())
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_escaped_and_complete() {
        let e = S3Error::new(ErrorCode::AccessDenied, "no <access> & \"no\" way").with_resource("/b/k<");
        let xml = e.to_xml("req-1");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
             <Message>no &lt;access&gt; &amp; &quot;no&quot; way</Message><Resource>/b/k&lt;</Resource>\
             <RequestId>req-1</RequestId></Error>"
        );
        let head = e.to_response("req-1", true);
        assert!(head.body().is_empty());
        assert_eq!(head.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn error_codes_are_read_from_upstream_bodies() {
        let ours = S3Error::new(ErrorCode::InvalidArgument, "gone").to_xml("r");
        assert_eq!(code_in(ours.as_bytes()).as_deref(), Some("InvalidArgument"));
        let aws = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code> SlowDown </Code>\n  <Message>";
        assert_eq!(code_in(aws).as_deref(), Some("SlowDown"));
        // Cut before the code ends, not XML, or not a code: nothing.
        for body in
            [&b"<Error><Code>NoSuchK"[..], b"<html>502 Bad Gateway</html>", b"<Code></Code>", b"<Code>a b</Code>"]
        {
            assert_eq!(code_in(body), None, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(code_in(format!("<Code>{}</Code>", "A".repeat(65)).as_bytes()), None);
    }
}
