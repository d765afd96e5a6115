//! Compiled action and resource patterns, and the policy-variable templates
//! that resources and some condition values may contain.

use crate::context::Context;
use crate::glob::{self, Glob, Tok};

/// One piece of a string that may hold policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text as written: in a pattern its `*` and `?` are wildcards.
    Text(String),
    /// `${*}`, `${?}` or `${$}`: the character itself, never a wildcard.
    Literal(char),
    /// `${key}` or `${key, 'default'}`.
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Var {
    /// The context key, lowercased.
    pub(crate) key: String,
    /// As written in the policy, for warnings.
    pub(crate) written: String,
    pub(crate) default: Option<String>,
}

impl Var {
    pub(crate) fn resolve<'a>(&'a self, ctx: &'a Context) -> Option<&'a str> {
        ctx.single(&self.key).or(self.default.as_deref())
    }
}

/// Splits text into parts. With `variables` false (Version 2008-10-17 or
/// none) the whole text is one literal part, as AWS reads it.
pub(crate) fn template(text: &str, variables: bool) -> Result<Vec<Part>, String> {
    if !variables || !text.contains("${") {
        return Ok(vec![Part::Text(text.to_owned())]);
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let body_start = start + 2;
        let end =
            variable_end(&rest[body_start..]).ok_or_else(|| format!("\"{text}\" has a `${{` with no closing `}}`"))?;
        let body = &rest[body_start..body_start + end];
        parts.push(variable(body).map_err(|why| format!("\"{text}\": policy variable `${{{body}}}` {why}"))?);
        rest = &rest[body_start + end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// Where the `}` closing a variable body is, skipping quoted defaults.
fn variable_end(body: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in body.char_indices() {
        match c {
            '\'' => quoted = !quoted, // '' inside a quote toggles twice: stays quoted
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn variable(body: &str) -> Result<Part, String> {
    match body.trim() {
        "*" => return Ok(Part::Literal('*')),
        "?" => return Ok(Part::Literal('?')),
        "$" => return Ok(Part::Literal('$')),
        _ => {}
    }
    let (key, default) = match body.split_once(',') {
        Some((key, default)) => (key.trim(), Some(default.trim())),
        None => (body.trim(), None),
    };
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || ":/-_.@+=".contains(c)) {
        return Err("does not name a condition key".to_owned());
    }
    let default = match default {
        None => None,
        Some(d) if d.len() >= 2 && d.starts_with('\'') && d.ends_with('\'') => {
            let inner = &d[1..d.len() - 1];
            // A quote inside is written twice.
            if inner.replace("''", "").contains('\'') {
                return Err("has a default with an unpaired quote (write ' as '')".to_owned());
            }
            Some(inner.replace("''", "'"))
        }
        Some(_) => return Err("has a default that is not in single quotes".to_owned()),
    };
    Ok(Part::Var(Var { key: key.to_ascii_lowercase(), written: key.to_owned(), default }))
}

pub(crate) fn has_vars(parts: &[Part]) -> bool {
    parts.iter().any(|p| matches!(p, Part::Var(_)))
}

pub(crate) fn vars(parts: &[Part]) -> impl Iterator<Item = &Var> {
    parts.iter().filter_map(|p| if let Part::Var(v) = p { Some(v) } else { None })
}

/// Wildcard tokens of parts whose variables have values.
pub(crate) fn pattern_toks(parts: &[Part], ctx: &Context) -> Option<Vec<Tok>> {
    let mut toks = Vec::new();
    for part in parts {
        match part {
            Part::Text(t) => toks.extend(glob::tokens(t)),
            Part::Literal(c) => toks.push(Tok::Char(*c)),
            Part::Var(v) => toks.extend(v.resolve(ctx)?.chars().map(Tok::Char)),
        }
    }
    Some(toks)
}

/// The plain string of parts whose variables have values.
pub(crate) fn plain_string(parts: &[Part], ctx: &Context) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Literal(c) => out.push(*c),
            Part::Var(v) => out.push_str(v.resolve(ctx)?),
        }
    }
    Some(out)
}

/// A wildcard pattern that may need the context for its variables.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    Static(Glob),
    Dynamic(Vec<Part>),
}

impl Pattern {
    pub(crate) fn new(parts: Vec<Part>) -> Pattern {
        if has_vars(&parts) {
            return Pattern::Dynamic(parts);
        }
        let toks: Vec<Tok> = parts
            .iter()
            .flat_map(|p| match p {
                Part::Text(t) => glob::tokens(t),
                Part::Literal(c) => vec![Tok::Char(*c)],
                Part::Var(_) => Vec::new(),
            })
            .collect();
        Pattern::Static(Glob::compile(&toks))
    }

    #[inline]
    pub(crate) fn matches(&self, text: &str, ctx: &Context) -> bool {
        match self {
            Pattern::Static(glob) => glob.matches(text, false),
            Pattern::Dynamic(parts) => pattern_toks(parts, ctx).is_some_and(|toks| glob::matches(&toks, text, false)),
        }
    }
}

/// An entry of `Action` or `NotAction`, lowercased at parse.
#[derive(Debug, Clone)]
pub(crate) enum ActionPattern {
    Any,
    /// A service without wildcards: one pattern over the whole `service:name`
    /// (the usual case, and one comparison).
    Whole(Glob),
    /// A service with wildcards: matched apart from the name, so that its
    /// `*` cannot reach past the colon.
    Service {
        service: Glob,
        name: Glob,
    },
}

impl ActionPattern {
    pub(crate) fn parse(text: &str) -> Result<ActionPattern, String> {
        if text == "*" {
            return Ok(ActionPattern::Any);
        }
        let valid = |s: &str, extra: &str| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?' || extra.contains(c))
        };
        match text.split_once(':') {
            Some((service, name)) if valid(service, "-") && valid(name, "-_") => Ok(if service.contains(['*', '?']) {
                ActionPattern::Service {
                    service: Glob::from_pattern(&service.to_ascii_lowercase()),
                    name: Glob::from_pattern(&name.to_ascii_lowercase()),
                }
            } else {
                ActionPattern::Whole(Glob::from_pattern(&text.to_ascii_lowercase()))
            }),
            _ => Err(format!(
                "\"{text}\" is not an action: write `service:Action` (letters, digits, `*`, `?`), e.g. \"s3:GetObject\" or \"s3:Get*\", or `*`"
            )),
        }
    }

    /// `action` is the request's; `lowered`: it is already ASCII-lowercase,
    /// so no folding is needed.
    #[inline]
    pub(crate) fn matches(&self, action: &str, lowered: bool) -> bool {
        match self {
            ActionPattern::Any => true,
            ActionPattern::Whole(glob) => glob.matches(action, !lowered),
            ActionPattern::Service { service, name } => {
                action.split_once(':').is_some_and(|(s, n)| service.matches(s, !lowered) && name.matches(n, !lowered))
            }
        }
    }
}

/// An entry of `Resource` or `NotResource`, or an `Arn*` condition value:
/// `*` or an ARN matched one colon-separated segment at a time (the sixth,
/// the resource, takes the rest, colons included).
#[derive(Debug, Clone)]
pub(crate) enum ArnPattern {
    Any,
    Arn {
        /// The first five segments with their colons (`arn:aws:s3:::`) when
        /// they are plain text; compared as one prefix.
        head: Option<Box<str>>,
        /// Otherwise the five segments one by one.
        segments: Vec<Pattern>,
        resource: Pattern,
    },
}

impl ArnPattern {
    /// Returns the pattern and the service segment as written (for warnings).
    pub(crate) fn parse(text: &str, variables: bool) -> Result<(ArnPattern, String), String> {
        if text == "*" {
            return Ok((ArnPattern::Any, "*".to_owned()));
        }
        let malformed = || {
            format!(
                "\"{text}\" is not an ARN: write `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, e.g. \"arn:aws:s3:::bucket/key\", or `*`"
            )
        };
        if !text.starts_with("arn:") {
            return Err(malformed());
        }
        let parts = template(text, variables)?;
        // Split into six segments at colons outside variables.
        let mut segments: Vec<Vec<Part>> = vec![Vec::new()];
        for part in parts {
            match part {
                Part::Text(t) => {
                    let mut rest = t.as_str();
                    while segments.len() < 6 {
                        let Some((before, after)) = rest.split_once(':') else { break };
                        if !before.is_empty() {
                            segments.last_mut().into_iter().for_each(|s| s.push(Part::Text(before.to_owned())));
                        }
                        segments.push(Vec::new());
                        rest = after;
                    }
                    if !rest.is_empty() {
                        segments.last_mut().into_iter().for_each(|s| s.push(Part::Text(rest.to_owned())));
                    }
                }
                other => segments.last_mut().into_iter().for_each(|s| s.push(other.clone())),
            }
        }
        if segments.len() != 6 {
            return Err(malformed());
        }
        let service = text.split(':').nth(2).unwrap_or_default().to_owned();
        let resource = Pattern::new(segments.pop().unwrap_or_default());
        let plain_head =
            segments.iter().all(|seg| seg.iter().all(|p| matches!(p, Part::Text(t) if !t.contains(['*', '?']))));
        let head = plain_head.then(|| {
            let mut head = String::new();
            for seg in &segments {
                for part in seg {
                    if let Part::Text(t) = part {
                        head.push_str(t);
                    }
                }
                head.push(':');
            }
            head.into_boxed_str()
        });
        let segments = if head.is_some() { Vec::new() } else { segments.into_iter().map(Pattern::new).collect() };
        Ok((ArnPattern::Arn { head, segments, resource }, service))
    }

    #[inline]
    pub(crate) fn matches(&self, arn: &str, ctx: &Context) -> bool {
        match self {
            ArnPattern::Any => true,
            ArnPattern::Arn { head: Some(head), resource, .. } => {
                arn.len() >= head.len()
                    && arn.is_char_boundary(head.len())
                    && glob::bytes_eq(head.as_bytes(), &arn.as_bytes()[..head.len()])
                    && resource.matches(&arn[head.len()..], ctx)
            }
            ArnPattern::Arn { head: None, segments, resource } => {
                let mut given = arn.splitn(6, ':');
                for segment in segments {
                    match given.next() {
                        Some(text) if segment.matches(text, ctx) => {}
                        _ => return false,
                    }
                }
                given.next().is_some_and(|rest| resource.matches(rest, ctx))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(template("a${aws:username}b", false).unwrap(), vec![Part::Text("a${aws:username}b".into())]);
        let parts = template("home/${aws:username, 'it''s'}/${*}${?}${$}", true).unwrap();
        assert_eq!(parts.len(), 6);
        assert_eq!(
            parts[1],
            Part::Var(Var { key: "aws:username".into(), written: "aws:username".into(), default: Some("it's".into()) })
        );
        assert_eq!(parts[3..], [Part::Literal('*'), Part::Literal('?'), Part::Literal('$')]);
        assert!(template("a${aws:username", true).is_err());
        assert!(template("a${}", true).is_err());
        assert!(template("a${aws:username, x}", true).is_err());
        assert!(template("a${aws:username, 'x'y'}", true).is_err());
    }

    #[test]
    fn arns() {
        let ctx = Context::new();
        let (p, service) = ArnPattern::parse("arn:aws:s3:::bucket/*", true).unwrap();
        assert_eq!(service, "s3");
        assert!(p.matches("arn:aws:s3:::bucket/a:b/c", &ctx));
        assert!(!p.matches("arn:aws:s3:::bucket", &ctx));
        assert!(!p.matches("*", &ctx));
        let (p, _) = ArnPattern::parse("arn:aws:s3:*:*:bucket", true).unwrap();
        assert!(p.matches("arn:aws:s3:::bucket", &ctx));
        assert!(!p.matches("arn:aws:s3:x:y:z:bucket", &ctx));
        assert!(ArnPattern::parse("arn:aws:s3::bucket", true).is_err());
        assert!(ArnPattern::parse("bucket/*", true).is_err());
        let (p, _) = ArnPattern::parse("arn:${aws:username}:s3:::b", true).unwrap();
        let mut ctx = Context::new();
        ctx.set("aws:username", "aws");
        assert!(p.matches("arn:aws:s3:::b", &ctx));
    }
}
