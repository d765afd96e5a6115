//! The `Condition` element: operators, their values compiled at parse, and
//! their evaluation against the request context.
//!
//! Semantics (docs/POLICIES.md gives the sources): within one operator the
//! keys are `AND`ed and the values of one key `OR`ed; a negated operator
//! (`StringNotEquals`, `NotIpAddress`, …) is the negation of its positive
//! one, so its values act as NOR. A key missing from the request makes a
//! positive operator false and a negated one true; `…IfExists` makes it true;
//! `ForAllValues` is true and `ForAnyValue` false on a missing or empty key.

use crate::context::Context;
use crate::json::Json;
use crate::keys::{self, KeyKind};
use crate::pattern::{self, ArnPattern, Part, Pattern, Var};
use crate::values::{self, Cidr};

/// What the operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    BinaryEquals,
    IpAddress,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    None,
    ForAnyValue,
    ForAllValues,
}

/// (name, what it compares, negated)
const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Base::StringEqualsIgnoreCase, true),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("NumericEquals", Base::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Base::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Base::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Base::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Base::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Base::Numeric(Cmp::Ge), false),
    ("DateEquals", Base::Date(Cmp::Eq), false),
    ("DateNotEquals", Base::Date(Cmp::Eq), true),
    ("DateLessThan", Base::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Base::Date(Cmp::Le), false),
    ("DateGreaterThan", Base::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Base::Date(Cmp::Ge), false),
    ("Bool", Base::Bool, false),
    ("BinaryEquals", Base::BinaryEquals, false),
    ("IpAddress", Base::IpAddress, false),
    ("NotIpAddress", Base::IpAddress, true),
    ("ArnEquals", Base::Arn, false),
    ("ArnLike", Base::Arn, false),
    ("ArnNotEquals", Base::Arn, true),
    ("ArnNotLike", Base::Arn, true),
    ("Null", Base::Null, false),
];

/// One condition value, compiled for its operator.
#[derive(Debug, Clone)]
enum Value {
    Text(String),
    TextVars(Vec<Part>),
    Like(Pattern),
    Number(f64),
    Date(i64),
    Bool(bool),
    Cidr(Cidr),
    Arn(ArnPattern),
}

/// One key under one operator: `"StringLike": {"s3:prefix": ["a/*", "b/*"]}`
/// compiles to one of these per key.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    base: Base,
    negated: bool,
    if_exists: bool,
    set: SetOp,
    /// The context key, lowercased; None for a key this crate does not know.
    key: Option<String>,
    values: Vec<Value>,
}

impl Condition {
    /// The context key (lowercased), if this crate knows it.
    pub(crate) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

/// What parsing a `Condition` element gives besides the conditions.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) conditions: Vec<Condition>,
    pub(crate) vars: Vec<Var>,
    pub(crate) warnings: Vec<String>,
}

/// A fault in the `Condition` element: the element path and what is wrong.
pub(crate) type Fault = (String, String);

fn operator(name: &str) -> Option<(Base, bool, bool, SetOp)> {
    let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (SetOp::ForAnyValue, rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (SetOp::ForAllValues, rest)
    } else {
        (SetOp::None, name)
    };
    let (if_exists, base_name) = match rest.strip_suffix("IfExists") {
        Some(base) => (true, base),
        None => (false, rest),
    };
    let (_, base, negated) = OPERATORS.iter().find(|(n, _, _)| *n == base_name)?;
    if *base == Base::Null && (if_exists || set != SetOp::None) {
        return None;
    }
    Some((*base, *negated, if_exists, set))
}

/// Reads the `Condition` element. `variables`: the policy is Version 2012-10-17.
pub(crate) fn parse(element: &Json, variables: bool) -> Result<Parsed, Fault> {
    let Json::Object(blocks) = element else {
        return Err(("Condition".into(), format!("must be an object of operators, not {}", element.kind())));
    };
    let mut parsed = Parsed::default();
    for (op_name, block) in blocks {
        let at = format!("Condition.{op_name}");
        let (base, negated, if_exists, set) = operator(op_name).ok_or_else(|| {
            let hint = if op_name.starts_with("Null") || op_name.contains(":Null") {
                " (Null takes no IfExists and no ForAnyValue/ForAllValues)"
            } else {
                ""
            };
            (
                "Condition".to_owned(),
                format!("unknown condition operator \"{op_name}\"{hint}; see docs/POLICIES.md for the supported ones"),
            )
        })?;
        let Json::Object(keys) = block else {
            return Err((at, format!("must be an object of condition keys, not {}", block.kind())));
        };
        if keys.is_empty() {
            parsed.warnings.push(format!("{at} has no keys: it is always true"));
        }
        for (key, raw) in keys {
            let at = format!("{at}.{key}");
            let texts = value_texts(raw).map_err(|why| (at.clone(), why))?;
            let kind = keys::classify(key);
            match kind {
                KeyKind::Unknown => parsed.warnings.push(format!(
                    "{at}: \"{key}\" is not a condition key this proxy knows; it is never present in a request, so it always evaluates as missing"
                )),
                KeyKind::Single if set != SetOp::None => parsed.warnings.push(format!(
                    "{at}: {} on the single-valued key \"{key}\" {}; AWS advises against set operators on single-valued keys",
                    if set == SetOp::ForAllValues { "ForAllValues" } else { "ForAnyValue" },
                    if set == SetOp::ForAllValues { "is true when the key is missing" } else { "acts as the plain operator" },
                )),
                _ => {}
            }
            let mut values = Vec::with_capacity(texts.len());
            for text in &texts {
                let value = compile_value(base, text, variables).map_err(|why| (at.clone(), why))?;
                if let Value::TextVars(parts) | Value::Like(Pattern::Dynamic(parts)) = &value {
                    parsed.vars.extend(pattern::vars(parts).cloned());
                }
                if let Value::Arn(ArnPattern::Arn { segments, resource, .. }) = &value {
                    for p in segments.iter().chain([resource]) {
                        if let Pattern::Dynamic(parts) = p {
                            parsed.vars.extend(pattern::vars(parts).cloned());
                        }
                    }
                }
                values.push(value);
            }
            let key = (kind != KeyKind::Unknown).then(|| key.to_ascii_lowercase());
            parsed.conditions.push(Condition { base, negated, if_exists, set, key, values });
        }
    }
    Ok(parsed)
}

/// A condition's values as strings: a string, number or boolean, or a
/// non-empty array of them.
fn value_texts(raw: &Json) -> Result<Vec<String>, String> {
    let one = |v: &Json| match v {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(format!("condition values must be strings, numbers or booleans, not {}", other.kind())),
    };
    match raw {
        Json::Array(items) if items.is_empty() => Err("has an empty list of values".to_owned()),
        Json::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn compile_value(base: Base, text: &str, variables: bool) -> Result<Value, String> {
    Ok(match base {
        Base::StringEquals | Base::StringEqualsIgnoreCase => {
            let parts = pattern::template(text, variables)?;
            if pattern::has_vars(&parts) {
                Value::TextVars(parts)
            } else {
                Value::Text(pattern::plain_string(&parts, &Context::new()).unwrap_or_default())
            }
        }
        Base::StringLike => Value::Like(Pattern::new(pattern::template(text, variables)?)),
        Base::BinaryEquals => Value::Text(text.to_owned()),
        Base::Numeric(_) => Value::Number(values::number(text).ok_or_else(|| format!("\"{text}\" is not a number"))?),
        Base::Date(_) => Value::Date(values::date(text).ok_or_else(|| {
            format!("\"{text}\" is not a date: write ISO 8601 (\"2026-12-03T11:40:55Z\") or epoch seconds")
        })?),
        Base::Bool | Base::Null => {
            Value::Bool(values::boolean(text).ok_or_else(|| format!("\"{text}\" is not \"true\" or \"false\""))?)
        }
        Base::IpAddress => Value::Cidr(Cidr::parse(text).ok_or_else(|| {
            format!("\"{text}\" is not an IP address or CIDR block (e.g. \"203.0.113.0/24\", \"2001:db8::/32\")")
        })?),
        Base::Arn => Value::Arn(ArnPattern::parse(text, variables)?.0),
    })
}

impl Condition {
    pub(crate) fn evaluate(&self, ctx: &Context) -> bool {
        let given = self.key.as_deref().and_then(|key| ctx.lookup(key)).map(|entry| entry.values.as_slice());
        if self.base == Base::Null {
            let present = given.is_some_and(|v| !v.is_empty());
            // "Null": true means "the key is absent".
            return self.values.iter().any(|v| matches!(v, Value::Bool(absent) if *absent != present));
        }
        let given = match given {
            Some(values) if !values.is_empty() => values,
            _ => {
                return self.if_exists
                    || match self.set {
                        SetOp::ForAllValues => true,
                        SetOp::ForAnyValue => false,
                        SetOp::None => self.negated,
                    };
            }
        };
        match self.set {
            SetOp::None => given.iter().any(|v| self.matches_one(v, ctx)) != self.negated,
            SetOp::ForAnyValue => given.iter().any(|v| self.matches_one(v, ctx) != self.negated),
            SetOp::ForAllValues => given.iter().all(|v| self.matches_one(v, ctx) != self.negated),
        }
    }

    /// Whether one request value matches any of the policy's values under the
    /// positive form of the operator.
    fn matches_one(&self, given: &str, ctx: &Context) -> bool {
        match self.base {
            Base::Numeric(cmp) => {
                let Some(n) = values::number(given.trim()) else { return false };
                self.values.iter().any(|v| matches!(v, Value::Number(p) if compare(cmp, n, *p)))
            }
            Base::Date(cmp) => {
                let Some(d) = values::date(given) else { return false };
                self.values.iter().any(|v| matches!(v, Value::Date(p) if compare(cmp, d, *p)))
            }
            Base::Bool => {
                let Some(b) = values::boolean(given) else { return false };
                self.values.iter().any(|v| matches!(v, Value::Bool(p) if *p == b))
            }
            _ => self.values.iter().any(|v| match v {
                Value::Text(p) if self.base == Base::StringEqualsIgnoreCase => eq_ignore_case(p, given),
                Value::Text(p) => p == given,
                Value::TextVars(parts) => pattern::plain_string(parts, ctx).is_some_and(|p| {
                    if self.base == Base::StringEqualsIgnoreCase { eq_ignore_case(&p, given) } else { p == given }
                }),
                Value::Like(p) => p.matches(given, ctx),
                Value::Cidr(c) => c.contains(given),
                Value::Arn(a) => a.matches(given, ctx),
                Value::Number(_) | Value::Date(_) | Value::Bool(_) => false,
            }),
        }
    }
}

fn compare<T: PartialOrd + Copy>(cmp: Cmp, given: T, policy: T) -> bool {
    match cmp {
        Cmp::Eq => given == policy,
        Cmp::Lt => given < policy,
        Cmp::Le => given <= policy,
        Cmp::Gt => given > policy,
        Cmp::Ge => given >= policy,
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        assert_eq!(operator("StringNotEqualsIfExists"), Some((Base::StringEquals, true, true, SetOp::None)));
        assert_eq!(operator("ForAllValues:StringLike"), Some((Base::StringLike, false, false, SetOp::ForAllValues)));
        assert_eq!(operator("NullIfExists"), None);
        assert_eq!(operator("ForAnyValue:Null"), None);
        assert_eq!(operator("stringequals"), None);
        assert_eq!(operator("StringEqualsIfExistsIfExists"), None);
    }
}
