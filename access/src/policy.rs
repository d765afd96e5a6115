//! A policy document: parsed, validated and compiled once, when it is
//! stored; evaluated many times. Everything a document may hold is either
//! understood or refused with a message naming the statement and element.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::condition::{self, Condition};
use crate::context::Context;
use crate::json::Json;
use crate::keys::{self, KeyKind};
use crate::pattern::{ActionPattern, ArnPattern, Pattern, Var};

/// The largest policy document accepted, in bytes (AWS's limit for a
/// managed policy is 6,144 characters without whitespace; this is a plain
/// byte bound on the input).
pub const MAX_POLICY_BYTES: usize = 20_480;

/// A parsed, validated and compiled identity policy.
#[derive(Debug, Clone)]
pub struct Policy {
    canonical: String,
    sha256: String,
    pub(crate) statements: Vec<Statement>,
}

/// A policy and what is suspicious (but allowed) in it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub policy: Policy,
    pub warnings: Vec<Warning>,
}

/// Something allowed in a policy that probably does not do what its author
/// meant.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// Index of the statement, from 0.
    pub statement: usize,
    pub sid: Option<String>,
    pub message: String,
}

/// Why a document is not an acceptable policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("policy document is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("policy document is not valid JSON: {0}")]
    Json(String),
    #[error("policy document: {element}: {message}")]
    Document { element: String, message: String },
    #[error("{}: {element}: {message}", statement_label(*.statement, .sid.as_deref()))]
    Statement { statement: usize, sid: Option<String>, element: String, message: String },
}

fn statement_label(index: usize, sid: Option<&str>) -> String {
    match sid {
        Some(sid) => format!("Statement[{index}] (Sid \"{sid}\")"),
        None => format!("Statement[{index}]"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementEffect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: StatementEffect,
    /// `NotAction` rather than `Action`.
    not_action: bool,
    actions: Vec<ActionPattern>,
    /// `NotResource` rather than `Resource`.
    not_resource: bool,
    resources: Vec<ArnPattern>,
    conditions: Vec<Condition>,
    /// Variables without a default: each must resolve or the statement does not apply.
    required_vars: Vec<Var>,
}

impl Statement {
    /// Whether the statement applies to the request. `lowered`: `action` is
    /// ASCII-lowercase already.
    pub(crate) fn applies(&self, action: &str, lowered: bool, resource: &str, ctx: &Context) -> bool {
        self.matches_action(action, lowered) && self.applies_to(resource, ctx)
    }

    /// The `Action`/`NotAction` part of [`Statement::applies`]: it depends
    /// on the action alone, so a [`crate::PolicySet`] may remember it.
    pub(crate) fn matches_action(&self, action: &str, lowered: bool) -> bool {
        self.actions.iter().any(|a| a.matches(action, lowered)) != self.not_action
    }

    /// The rest of [`Statement::applies`]: variables, resource, conditions.
    pub(crate) fn applies_to(&self, resource: &str, ctx: &Context) -> bool {
        if !self.required_vars.iter().all(|v| v.resolve(ctx).is_some()) {
            return false;
        }
        if self.resources.iter().any(|r| r.matches(resource, ctx)) == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.evaluate(ctx))
    }
}

impl Policy {
    /// Parses and validates an IAM policy document (JSON bytes).
    pub fn parse(json: &[u8]) -> Result<Parsed, PolicyError> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { size: json.len(), limit: MAX_POLICY_BYTES });
        }
        let doc = Json::parse(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        let canonical = doc.canonical();
        let digest = Sha256::digest(canonical.as_bytes());
        let sha256 = hex::encode(digest);
        let doc_err = |element: &str, message: String| PolicyError::Document { element: element.to_owned(), message };
        let Json::Object(members) = &doc else {
            return Err(doc_err("document", format!("must be a JSON object, not {}", doc.kind())));
        };
        let mut version = None;
        let mut statement_element = None;
        for (name, value) in members {
            match name.as_str() {
                "Version" => match value {
                    Json::String(v) if v == "2012-10-17" || v == "2008-10-17" => version = Some(v.as_str()),
                    other => {
                        return Err(doc_err(
                            "Version",
                            format!("must be \"2012-10-17\" (or the old \"2008-10-17\"), not {}", describe(other)),
                        ));
                    }
                },
                "Id" => {
                    if !matches!(value, Json::String(_)) {
                        return Err(doc_err("Id", format!("must be a string, not {}", value.kind())));
                    }
                }
                "Statement" => statement_element = Some(value),
                other => {
                    return Err(doc_err(other, "unknown element; a policy has Version, Id and Statement".to_owned()));
                }
            }
        }
        let variables = version == Some("2012-10-17");
        let raw_statements: Vec<&Json> = match statement_element {
            None => return Err(doc_err("Statement", "is missing".to_owned())),
            Some(Json::Array(items)) if items.is_empty() => {
                return Err(doc_err("Statement", "is an empty list".to_owned()));
            }
            Some(Json::Array(items)) => items.iter().collect(),
            Some(one @ Json::Object(_)) => vec![one],
            Some(other) => {
                return Err(doc_err(
                    "Statement",
                    format!("must be an object or a list of objects, not {}", other.kind()),
                ));
            }
        };
        let mut statements: Vec<Statement> = Vec::with_capacity(raw_statements.len());
        let mut warnings = Vec::new();
        for (index, raw) in raw_statements.into_iter().enumerate() {
            let statement = parse_statement(index, raw, variables, &mut warnings)?;
            if let Some(sid) = &statement.sid
                && let Some(first) = statements.iter().position(|s| s.sid.as_ref() == Some(sid))
            {
                return Err(PolicyError::Statement {
                    statement: index,
                    sid: Some(sid.clone()),
                    element: "Sid".into(),
                    message: format!("\"{sid}\" is already the Sid of Statement[{first}]; Sids must be unique"),
                });
            }
            statements.push(statement);
        }
        Ok(Parsed { policy: Policy { canonical, sha256, statements }, warnings })
    }

    /// The canonical form: the document re-serialised as compact JSON with
    /// object keys sorted (arrays keep their order), computed once at parse.
    #[must_use]
    pub fn canonical_json(&self) -> &str {
        &self.canonical
    }

    /// SHA-256 of [`Policy::canonical_json`], lowercase hex.
    #[must_use]
    pub fn sha256_hex(&self) -> &str {
        &self.sha256
    }

    /// The known condition keys the policy's conditions use, lowercased,
    /// with the index of their statement.
    #[must_use]
    pub fn condition_keys(&self) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        for (index, statement) in self.statements.iter().enumerate() {
            for condition in &statement.conditions {
                if let Some(key) = condition.key() {
                    out.push((index, key));
                }
            }
        }
        out
    }

    #[must_use]
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }
}

fn describe(value: &Json) -> String {
    match value {
        Json::String(s) => format!("\"{s}\""),
        other => other.kind().to_owned(),
    }
}

fn parse_statement(
    index: usize,
    raw: &Json,
    variables: bool,
    warnings: &mut Vec<Warning>,
) -> Result<Statement, PolicyError> {
    let sid = match raw {
        Json::Object(members) => members.iter().find(|(k, _)| k == "Sid").map(|(_, v)| v),
        _ => None,
    };
    let sid_text = match sid {
        Some(Json::String(s)) => Some(s.clone()),
        _ => None,
    };
    let fault = |element: &str, message: String| PolicyError::Statement {
        statement: index,
        sid: sid_text.clone(),
        element: element.to_owned(),
        message,
    };
    let Json::Object(members) = raw else {
        return Err(fault("Statement", format!("must be an object, not {}", raw.kind())));
    };
    if let Some(other) = sid.filter(|s| !matches!(s, Json::String(_))) {
        return Err(fault("Sid", format!("must be a string, not {}", other.kind())));
    }
    let mut effect = None;
    let mut action = None;
    let mut resource = None;
    let mut condition = None;
    for (name, value) in members {
        match name.as_str() {
            "Sid" => {}
            "Effect" => match value {
                Json::String(e) if e == "Allow" => effect = Some(StatementEffect::Allow),
                Json::String(e) if e == "Deny" => effect = Some(StatementEffect::Deny),
                other => {
                    return Err(fault("Effect", format!("must be \"Allow\" or \"Deny\", not {}", describe(other))));
                }
            },
            "Action" | "NotAction" => {
                if action.is_some() {
                    return Err(fault(name, "a statement has exactly one of Action and NotAction, not both".into()));
                }
                action = Some((name.as_str(), value));
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return Err(fault(
                        name,
                        "a statement has exactly one of Resource and NotResource, not both".into(),
                    ));
                }
                resource = Some((name.as_str(), value));
            }
            "Condition" => condition = Some(value),
            "Principal" | "NotPrincipal" => {
                return Err(fault(
                    name,
                    "is not allowed: these are identity policies, attached to a principal, so they name none (remove it)"
                        .into(),
                ));
            }
            other => {
                return Err(fault(
                    other,
                    "unknown element; a statement has Sid, Effect, Action or NotAction, Resource or NotResource, and Condition"
                        .into(),
                ));
            }
        }
    }
    let effect = effect.ok_or_else(|| fault("Effect", "is missing".into()))?;
    let (action_name, action_value) = action.ok_or_else(|| fault("Action", "is missing (or NotAction)".into()))?;
    let (resource_name, resource_value) =
        resource.ok_or_else(|| fault("Resource", "is missing (or NotResource)".into()))?;
    let warn = |warnings: &mut Vec<Warning>, message: String| {
        warnings.push(Warning { statement: index, sid: sid_text.clone(), message });
    };

    let actions = strings(action_value)
        .map_err(|why| fault(action_name, why))?
        .into_iter()
        .map(ActionPattern::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| fault(action_name, why))?;

    let mut resources = Vec::new();
    let mut vars: Vec<Var> = Vec::new();
    for text in strings(resource_value).map_err(|why| fault(resource_name, why))? {
        let (pattern, service) = ArnPattern::parse(text, variables).map_err(|why| fault(resource_name, why))?;
        if service != "s3" && !service.contains(['*', '?']) {
            warn(
                warnings,
                format!("{resource_name} \"{text}\" is for service \"{service}\", not s3: it never matches"),
            );
        }
        if let ArnPattern::Arn { segments, resource, .. } = &pattern {
            for p in segments.iter().chain([resource]) {
                if let Pattern::Dynamic(parts) = p {
                    vars.extend(crate::pattern::vars(parts).cloned());
                }
            }
        }
        if !variables && text.contains("${") {
            warn(
                warnings,
                format!(
                    "{resource_name} \"{text}\": the policy's Version is not 2012-10-17, so `${{…}}` is literal text, not a policy variable"
                ),
            );
        }
        resources.push(pattern);
    }

    let conditions = match condition {
        None => Vec::new(),
        Some(element) => {
            let parsed = condition::parse(element, variables).map_err(|(element, why)| fault(&element, why))?;
            for message in parsed.warnings {
                warn(warnings, message);
            }
            vars.extend(parsed.vars);
            if !variables && element.canonical().contains("${") {
                warn(
                    warnings,
                    "Condition: the policy's Version is not 2012-10-17, so `${…}` is literal text, not a policy variable"
                        .into(),
                );
            }
            parsed.conditions
        }
    };

    if effect == StatementEffect::Allow && action_name == "NotAction" {
        warn(warnings, "Allow with NotAction grants broadly: every action not listed, on the resources".into());
    }
    if effect == StatementEffect::Allow && resource_name == "NotResource" {
        warn(warnings, "Allow with NotResource grants broadly: every resource not listed".into());
    }
    let mut required_vars = Vec::new();
    for var in vars {
        match keys::classify(&var.written) {
            KeyKind::Unknown => {
                let fallback = match &var.default {
                    Some(d) => format!("its default '{d}' is always used"),
                    None => "the statement never applies".to_owned(),
                };
                warn(
                    warnings,
                    format!("policy variable ${{{}}} names a key this proxy never sets: {fallback}", var.written),
                );
            }
            KeyKind::Multi => warn(
                warnings,
                format!("policy variable ${{{}}} names a multivalued key, which never resolves", var.written),
            ),
            KeyKind::Single => {}
        }
        if var.default.is_none() && !required_vars.iter().any(|v: &Var| v.key == var.key) {
            required_vars.push(var);
        }
    }

    Ok(Statement {
        sid: sid_text.clone(),
        effect,
        not_action: action_name == "NotAction",
        actions,
        not_resource: resource_name == "NotResource",
        resources,
        conditions,
        required_vars,
    })
}

/// A string or a non-empty list of strings.
fn strings(value: &Json) -> Result<Vec<&str>, String> {
    match value {
        Json::String(s) => Ok(vec![s.as_str()]),
        Json::Array(items) if items.is_empty() => Err("is an empty list".into()),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Ok(s.as_str()),
                other => Err(format!("must hold strings only, not {}", other.kind())),
            })
            .collect(),
        other => Err(format!("must be a string or a list of strings, not {}", other.kind())),
    }
}
