//! Documents that must be refused, each with the part of the message that
//! tells its author what is wrong; and documents that parse with a warning.

use egress_access::{Policy, PolicyError};

fn stmt(body: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"S0","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}},{body}]}}"#
    )
}

#[test]
fn bad_documents_are_refused_with_a_clear_message() {
    let big = format!(r#"{{"Version":"2012-10-17","Id":"{}","Statement":[]}}"#, "x".repeat(21_000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("not JSON", "{".into(), "not valid JSON"),
        ("trailing data", r#"{"Statement":[]} x"#.into(), "not valid JSON"),
        ("not an object", "[]".into(), "must be a JSON object"),
        ("too large", big, "the limit is 20480 bytes"),
        (
            "duplicate key",
            r#"{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}"#.into(),
            "duplicate key \"Version\"",
        ),
        (
            "bad version",
            r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(),
            "Version: must be \"2012-10-17\"",
        ),
        (
            "unknown top-level element",
            r#"{"Version":"2012-10-17","Statment":[]}"#.into(),
            "policy document: Statment: unknown element",
        ),
        ("no Statement", r#"{"Version":"2012-10-17"}"#.into(), "Statement: is missing"),
        ("empty Statement", r#"{"Version":"2012-10-17","Statement":[]}"#.into(), "Statement: is an empty list"),
        ("statement not object", stmt(r#""x""#), "Statement[1]: Statement: must be an object"),
        (
            "Principal present",
            stmt(r#"{"Sid":"P","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}"#),
            "Statement[1] (Sid \"P\"): Principal: is not allowed: these are identity policies",
        ),
        (
            "NotPrincipal present",
            stmt(r#"{"Effect":"Deny","NotPrincipal":{"AWS":"x"},"Action":"s3:*","Resource":"*"}"#),
            "NotPrincipal: is not allowed",
        ),
        (
            "bad Effect",
            stmt(r#"{"Sid":"E","Effect":"allow","Action":"s3:*","Resource":"*"}"#),
            "Statement[1] (Sid \"E\"): Effect: must be \"Allow\" or \"Deny\", not \"allow\"",
        ),
        ("missing Effect", stmt(r#"{"Action":"s3:*","Resource":"*"}"#), "Effect: is missing"),
        (
            "Action and NotAction",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}"#),
            "exactly one of Action and NotAction",
        ),
        (
            "Resource and NotResource",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","NotResource":"*"}"#),
            "exactly one of Resource and NotResource",
        ),
        ("missing Action", stmt(r#"{"Effect":"Allow","Resource":"*"}"#), "Action: is missing"),
        ("missing Resource", stmt(r#"{"Effect":"Allow","Action":"s3:*"}"#), "Resource: is missing"),
        (
            "non-string action",
            stmt(r#"{"Effect":"Allow","Action":["s3:GetObject",7],"Resource":"*"}"#),
            "Action: must hold strings only, not a number",
        ),
        (
            "action object",
            stmt(r#"{"Effect":"Allow","Action":{"a":1},"Resource":"*"}"#),
            "Action: must be a string or a list of strings",
        ),
        ("empty Action list", stmt(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#), "Action: is an empty list"),
        (
            "malformed action",
            stmt(r#"{"Effect":"Allow","Action":"GetObject","Resource":"*"}"#),
            "\"GetObject\" is not an action",
        ),
        (
            "action with a variable",
            stmt(r#"{"Effect":"Allow","Action":"s3:${aws:username}","Resource":"*"}"#),
            "is not an action",
        ),
        (
            "empty Resource list",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":[]}"#),
            "Resource: is an empty list",
        ),
        (
            "malformed ARN",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3::bucket"}"#),
            "is not an ARN",
        ),
        (
            "bucket name as resource",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"bucket/*"}"#),
            "\"bucket/*\" is not an ARN",
        ),
        (
            "unterminated variable",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username"}"#),
            "no closing",
        ),
        (
            "unknown statement element",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Conditions":{}}"#),
            "Conditions: unknown element",
        ),
        (
            "duplicate Sid",
            stmt(r#"{"Sid":"S0","Effect":"Allow","Action":"s3:*","Resource":"*"}"#),
            "Statement[1] (Sid \"S0\"): Sid: \"S0\" is already the Sid of Statement[0]",
        ),
        (
            "non-string Sid",
            stmt(r#"{"Sid":1,"Effect":"Allow","Action":"s3:*","Resource":"*"}"#),
            "Sid: must be a string",
        ),
        (
            "unknown operator",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"s3:prefix":"a"}}}"#),
            "unknown condition operator \"StringEqualz\"",
        ),
        (
            "NullIfExists",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NullIfExists":{"s3:prefix":"true"}}}"#,
            ),
            "Null takes no IfExists",
        ),
        (
            "bad IP",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.999/8"}}}"#,
            ),
            "Condition.IpAddress.aws:SourceIp: \"10.0.0.999/8\" is not an IP address",
        ),
        (
            "bad prefix length",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}"#,
            ),
            "is not an IP address or CIDR",
        ),
        (
            "bad number",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"abc"}}}"#,
            ),
            "\"abc\" is not a number",
        ),
        (
            "bad date",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"yesterday"}}}"#,
            ),
            "\"yesterday\" is not a date",
        ),
        (
            "bad bool",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}"#,
            ),
            "\"yes\" is not \"true\" or \"false\"",
        ),
        (
            "bad ARN condition value",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"bucket"}}}"#,
            ),
            "\"bucket\" is not an ARN",
        ),
        (
            "null condition value",
            stmt(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":null}}}"#,
            ),
            "must be strings, numbers or booleans, not null",
        ),
        (
            "empty condition values",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":[]}}}"#),
            "has an empty list of values",
        ),
        (
            "condition block not object",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":"x"}}"#),
            "Condition.StringEquals: must be an object of condition keys",
        ),
        (
            "Condition not object",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":[]}"#),
            "Condition: must be an object of operators",
        ),
        (
            "bad default quoting",
            stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username, x}"}"#),
            "default that is not in single quotes",
        ),
    ];
    let mut failures = Vec::new();
    for (name, doc, fragment) in &cases {
        match Policy::parse(doc.as_bytes()) {
            Ok(_) => failures.push(format!("  {name}: parsed, expected an error containing {fragment:?}")),
            Err(e) => {
                let message = e.to_string();
                if !message.contains(fragment) {
                    failures.push(format!("  {name}: {message:?} lacks {fragment:?}"));
                }
                if message.contains('\n') {
                    failures.push(format!("  {name}: message is not one line"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn error_names_statement_and_element() {
    let err = Policy::parse(stmt(r#"{"Sid":"Bad","Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"x"}}}"#).as_bytes()).unwrap_err();
    assert!(matches!(&err, PolicyError::Statement { statement: 1, sid: Some(s), .. } if s == "Bad"), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Statement[1] (Sid \"Bad\"): Condition.NumericLessThan.s3:max-keys: \"x\" is not a number"
    );
}

#[test]
fn warnings() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown key", stmt(r#"{"Sid":"U","Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"ec2:Region":"x"}}}"#), "\"ec2:Region\" is not a condition key this proxy knows"),
        ("Allow NotAction", stmt(r#"{"Effect":"Allow","NotAction":"s3:DeleteObject","Resource":"*"}"#), "grants broadly"),
        ("Allow NotResource", stmt(r#"{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::x/*"}"#), "grants broadly"),
        ("non-s3 resource", stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:iam::123456789012:user/x"}"#), "is for service \"iam\", not s3"),
        ("2008 variable", r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#.to_owned(), "literal text, not a policy variable"),
        ("no Version variable", r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#.to_owned(), "literal text, not a policy variable"),
        ("unknown variable", stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:TokenIssueTime}/*"}"#), "names a key this proxy never sets"),
        ("ForAllValues single-valued", stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"s3:prefix":"a"}}}"#), "is true when the key is missing"),
        ("empty operator block", stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{}}}"#), "has no keys: it is always true"),
    ];
    let mut failures = Vec::new();
    for (name, doc, fragment) in &cases {
        match Policy::parse(doc.as_bytes()) {
            Err(e) => failures.push(format!("  {name}: refused: {e}")),
            Ok(parsed) if !parsed.warnings.iter().any(|w| w.message.contains(fragment)) => {
                failures.push(format!("  {name}: warnings {:?} lack {fragment:?}", parsed.warnings));
            }
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    let clean =
        Policy::parse(stmt(r#"{"Sid":"S1","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}"#).as_bytes())
            .unwrap();
    assert!(clean.warnings.is_empty(), "{:?}", clean.warnings);
    let warned = Policy::parse(cases[0].1.as_bytes()).unwrap();
    assert_eq!((warned.warnings[0].statement, warned.warnings[0].sid.as_deref()), (1, Some("U")));
}

#[test]
fn size_limit_is_on_input_bytes() {
    let doc = stmt(r#"{"Effect":"Deny","Action":"s3:*","Resource":"*"}"#);
    let at_limit = format!("{doc}{}", " ".repeat(egress_access::MAX_POLICY_BYTES - doc.len()));
    assert_eq!(at_limit.len(), egress_access::MAX_POLICY_BYTES);
    assert!(Policy::parse(at_limit.as_bytes()).is_ok());
    assert!(matches!(
        Policy::parse(format!("{at_limit} ").as_bytes()),
        Err(PolicyError::TooLarge { size: 20_481, .. })
    ));
}
