//! IAM policy documents: the grammar lint checks, the normal form documents are compared in, and
//! the decoding of documents as IAM returns them.
//!
//! A Katalog gives a document as a YAML map (`document:`, `assumeRolePolicy:`), never as a JSON
//! string, so it reaches the provider as a JSON value. Two documents are the same when their
//! normal forms are equal ([`same`]): IAM treats a single string and a one-element list alike
//! (`Action: s3:GetObject` is `Action: [s3:GetObject]`), a single `Statement` object like a
//! one-element list, and the order of the values of `Action`, `Resource`, a principal or a
//! condition key as irrelevant; key order and whitespace never matter. Statement order is kept.
//!
//! IAM returns documents percent-encoded (RFC 3986): [`parse_returned`] decodes them.
//!
//! [`check`] is the grammar: what a document must look like before it is sent. The schema
//! describes only the document's top (`Version`, `Id`, a required `Statement`: lint reports a
//! misspelt element or a wrong version); its validators judge strings, not statements, so
//! [`check`] runs at the start of observe (plan and reconcile), before any call, and a document
//! that breaks it is an `InvalidField` error naming the field. It cannot know what only
//! AWS knows: whether an action or a condition key exists (`s3:GetObjekt` passes), whether an ARN
//! is well-formed beyond `arn:` (AWS rejects an IAM ARN with a region), whether a principal
//! exists, or a trust policy's account-specific size quota. Those come back as AWS's
//! `MalformedPolicyDocument` in an Error row.

use serde_json::{Map, Value};

/// Which grammar a document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// A managed (identity-based) policy: statements name resources, never principals.
    Identity,
    /// A role's trust policy: statements name principals, never resources.
    Trust,
}

/// The versions of the policy language.
pub(crate) const VERSIONS: &[&str] = &["2012-10-17", "2008-10-17"];
/// The elements a document may have at the top.
const TOP: &[&str] = &["Version", "Id", "Statement"];
/// The elements a statement may have.
const STATEMENT: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];
/// The kinds of principal a trust policy may name.
const PRINCIPALS: &[&str] = &["AWS", "Service", "Federated", "CanonicalUser"];
/// IAM's condition operators (each may end in `IfExists` and start with a set qualifier).
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];
/// AWS's limit on a managed policy document, in characters other than whitespace.
pub const MAX_MANAGED_POLICY_CHARS: usize = 6144;
/// How a value not known before apply is rendered (`kubectl orkestra plan`): not judged.
const PLACEHOLDER: &str = "(known after apply: ";

/// The keys whose values are sets of strings.
const STRING_SETS: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

/// Parse a document as IAM returns it: JSON, percent-encoded (CreateRole, GetRole,
/// GetPolicyVersion) or, from some emulators, plain.
pub fn parse_returned(text: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    // Percent-encoded JSON starts with `%7B`, which is never valid JSON: no ambiguity.
    let decoded = percent_decode(text)?;
    serde_json::from_str(&decoded)
        .map_err(|e| format!("the document IAM returned is not JSON: {e}"))
}

/// RFC 3986 percent-decoding (`+` is a plus, as IAM encodes).
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded document is not UTF-8".to_string())
}

/// The document as sent to IAM: compact JSON.
pub fn to_json(doc: &Value) -> String {
    doc.to_string()
}

/// Whether two documents mean the same (their normal forms are equal).
pub fn same(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

/// The normal form of a document: `Statement` always a list; `Action`, `NotAction`, `Resource`,
/// `NotResource`, principal values and condition values always sorted lists of strings without
/// duplicates (condition numbers and booleans as strings, as IAM reads them); keys sorted. A value
/// that is not of the grammar's shape is kept as it is, so a broken document never equals a good one.
pub fn normalize(doc: &Value) -> Value {
    let Value::Object(top) = doc else {
        return doc.clone();
    };
    let mut out = top.clone();
    if let Some(st) = top.get("Statement") {
        let list = match st {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        out.insert(
            "Statement".into(),
            Value::Array(list.iter().map(normalize_statement).collect()),
        );
    }
    sorted(out)
}

fn normalize_statement(s: &Value) -> Value {
    let Value::Object(m) = s else {
        return s.clone();
    };
    let mut out = m.clone();
    for k in STRING_SETS {
        if let Some(v) = m.get(*k) {
            out.insert((*k).into(), string_set(v));
        }
    }
    for k in ["Principal", "NotPrincipal"] {
        if let Some(Value::Object(p)) = m.get(k) {
            let p = p.iter().map(|(k, v)| (k.clone(), string_set(v))).collect();
            out.insert(k.into(), sorted(p));
        }
    }
    if let Some(Value::Object(c)) = m.get("Condition") {
        let c = c
            .iter()
            .map(|(op, keys)| {
                let keys = match keys {
                    Value::Object(km) => {
                        sorted(km.iter().map(|(k, v)| (k.clone(), string_set(v))).collect())
                    }
                    other => other.clone(),
                };
                (op.clone(), keys)
            })
            .collect();
        out.insert("Condition".into(), sorted(c));
    }
    sorted(out)
}

/// A string or list as a sorted list of strings without duplicates.
fn string_set(v: &Value) -> Value {
    let items = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut items: Vec<Value> = items
        .into_iter()
        .map(|x| match x {
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Number(n) => Value::String(n.to_string()),
            other => other,
        })
        .collect();
    items.sort_by_key(|x| match x {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    items.dedup();
    Value::Array(items)
}

fn sorted(m: Map<String, Value>) -> Value {
    let mut entries: Vec<(String, Value)> = m.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

/// Check `doc` against IAM's policy grammar for `kind`. The message names the element
/// (`Statement[1].Effect: ...`).
pub fn check(doc: &Value, kind: DocKind) -> Result<(), String> {
    let Value::Object(top) = doc else {
        return Err("a policy document must be a mapping".into());
    };
    for k in top.keys() {
        if !TOP.contains(&k.as_str()) {
            return Err(format!(
                "unknown element {k:?} (a policy document has Version, Id and Statement)"
            ));
        }
    }
    if let Some(v) = top.get("Version") {
        match v.as_str() {
            Some(s) if VERSIONS.contains(&s) || is_placeholder(s) => {}
            _ => {
                return Err(format!(
                    "Version: {v} is not \"2012-10-17\" or \"2008-10-17\""
                ))
            }
        }
    }
    if let Some(v) = top.get("Id") {
        if !v.is_string() {
            return Err("Id: must be a string".into());
        }
    }
    let statements = match top.get("Statement") {
        None => return Err("Statement: is required".into()),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err("Statement: must have at least one statement".into())
        }
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => return Err("Statement: must be a statement or a list of statements".into()),
    };
    let mut sids = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let at = format!("Statement[{i}]");
        let Value::Object(s) = s else {
            return Err(format!("{at}: must be a mapping"));
        };
        check_statement(s, kind, &at)?;
        if let Some(sid) = s.get("Sid").and_then(Value::as_str) {
            if !sid.is_empty() {
                if sids.contains(&sid) {
                    return Err(format!("{at}.Sid: {sid:?} is used by another statement"));
                }
                sids.push(sid);
            }
        }
    }
    if kind == DocKind::Identity {
        let size = to_json(doc).chars().filter(|c| !c.is_whitespace()).count();
        if size > MAX_MANAGED_POLICY_CHARS {
            return Err(format!(
                "the document has {size} characters (without whitespace); a managed policy may have {MAX_MANAGED_POLICY_CHARS}"
            ));
        }
    }
    Ok(())
}

fn check_statement(s: &Map<String, Value>, kind: DocKind, at: &str) -> Result<(), String> {
    for k in s.keys() {
        if !STATEMENT.contains(&k.as_str()) {
            return Err(format!(
                "{at}: unknown element {k:?} (a statement has {})",
                STATEMENT.join(", ")
            ));
        }
    }
    if let Some(sid) = s.get("Sid") {
        match sid.as_str() {
            Some(v) if v.chars().all(|c| c.is_ascii_alphanumeric()) || is_placeholder(v) => {}
            Some(v) => {
                return Err(format!(
                    "{at}.Sid: {v:?} may contain only letters and digits"
                ))
            }
            None => return Err(format!("{at}.Sid: must be a string")),
        }
    }
    match s.get("Effect").map(|e| e.as_str()) {
        None => return Err(format!("{at}.Effect: is required (Allow or Deny)")),
        Some(Some("Allow" | "Deny")) => {}
        Some(Some(e)) if is_placeholder(e) => {}
        Some(e) => {
            return Err(format!(
                "{at}.Effect: {} is not Allow or Deny",
                e.map_or_else(|| "a non-string".to_string(), |e| format!("{e:?}"))
            ))
        }
    }
    let (action, not_action) = (s.get("Action"), s.get("NotAction"));
    match (action, not_action) {
        (None, None) => return Err(format!("{at}: needs Action or NotAction")),
        (Some(_), Some(_)) => return Err(format!("{at}: has both Action and NotAction")),
        (Some(v), None) => check_strings(v, &format!("{at}.Action"), action_ok)?,
        (None, Some(v)) => check_strings(v, &format!("{at}.NotAction"), action_ok)?,
    }
    let resource = s.get("Resource").map(|v| ("Resource", v));
    let not_resource = s.get("NotResource").map(|v| ("NotResource", v));
    let principal = s.get("Principal").map(|v| ("Principal", v));
    let not_principal = s.get("NotPrincipal").map(|v| ("NotPrincipal", v));
    match kind {
        DocKind::Identity => {
            if let Some((k, _)) = principal.or(not_principal) {
                return Err(format!(
                    "{at}.{k}: a managed policy applies to whoever it is attached to and names no principal"
                ));
            }
            match (resource, not_resource) {
                (None, None) => return Err(format!("{at}: needs Resource or NotResource")),
                (Some(_), Some(_)) => {
                    return Err(format!("{at}: has both Resource and NotResource"))
                }
                (Some((k, v)), None) | (None, Some((k, v))) => {
                    check_strings(v, &format!("{at}.{k}"), resource_ok)?
                }
            }
        }
        DocKind::Trust => {
            if let Some((k, _)) = resource.or(not_resource) {
                return Err(format!(
                    "{at}.{k}: a trust policy applies to the role itself and names no resource"
                ));
            }
            match (principal, not_principal) {
                (None, None) => {
                    return Err(format!(
                        "{at}: a trust policy statement needs Principal or NotPrincipal"
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(format!("{at}: has both Principal and NotPrincipal"))
                }
                (Some((k, v)), None) | (None, Some((k, v))) => {
                    check_principal(v, &format!("{at}.{k}"))?
                }
            }
        }
    }
    if let Some(c) = s.get("Condition") {
        check_condition(c, &format!("{at}.Condition"))?;
    }
    Ok(())
}

fn is_placeholder(s: &str) -> bool {
    s.contains(PLACEHOLDER)
}

/// A string or a non-empty list of strings, each accepted by `ok`.
fn check_strings(v: &Value, at: &str, ok: fn(&str) -> Result<(), String>) -> Result<(), String> {
    let items: Vec<&Value> = match v {
        Value::String(_) => vec![v],
        Value::Array(a) if a.is_empty() => return Err(format!("{at}: must not be empty")),
        Value::Array(a) => a.iter().collect(),
        _ => return Err(format!("{at}: must be a string or a list of strings")),
    };
    for item in items {
        match item.as_str() {
            Some(s) if is_placeholder(s) => {}
            Some(s) => ok(s).map_err(|m| format!("{at}: {m}"))?,
            None => return Err(format!("{at}: must be a string or a list of strings")),
        }
    }
    Ok(())
}

/// `*` or `service:action` (wildcards allowed).
fn action_ok(s: &str) -> Result<(), String> {
    if s == "*" {
        return Ok(());
    }
    match s.split_once(':') {
        Some((service, action))
            if !service.is_empty()
                && !action.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !action.contains(':')
                && !action.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{s:?} is not an action (service:Action, like s3:GetObject, or *)"
        )),
    }
}

/// `*` or an ARN.
fn resource_ok(s: &str) -> Result<(), String> {
    if s == "*" || (s.starts_with("arn:") && s.split(':').count() >= 6) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a resource (an ARN, arn:partition:service:region:account:resource, or *)"
        ))
    }
}

fn any_string(_: &str) -> Result<(), String> {
    Ok(())
}

/// `*` or a mapping of principal kinds (AWS, Service, Federated, CanonicalUser) to strings.
fn check_principal(v: &Value, at: &str) -> Result<(), String> {
    match v {
        Value::String(s) if s == "*" || is_placeholder(s) => Ok(()),
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                if !PRINCIPALS.contains(&k.as_str()) {
                    return Err(format!(
                        "{at}: unknown principal kind {k:?} (AWS, Service, Federated or CanonicalUser)"
                    ));
                }
                check_strings(v, &format!("{at}.{k}"), any_string)?;
            }
            Ok(())
        }
        _ => Err(format!(
            "{at}: must be \"*\" or a mapping like {{Service: ec2.amazonaws.com}}"
        )),
    }
}

/// `{Operator: {key: value or values}}`.
fn check_condition(v: &Value, at: &str) -> Result<(), String> {
    let Value::Object(ops) = v else {
        return Err(format!(
            "{at}: must be a mapping of operators (like StringEquals) to keys and values"
        ));
    };
    for (op, keys) in ops {
        if !operator_ok(op) {
            return Err(format!("{at}: {op:?} is not a condition operator"));
        }
        let Value::Object(keys) = keys else {
            return Err(format!(
                "{at}.{op}: must be a mapping of condition keys to values"
            ));
        };
        for (key, value) in keys {
            let scalar = |v: &Value| v.is_string() || v.is_number() || v.is_boolean();
            let ok = match value {
                Value::Array(a) => !a.is_empty() && a.iter().all(scalar),
                v => scalar(v),
            };
            if !ok {
                return Err(format!(
                    "{at}.{op}.{key}: must be a value or a non-empty list of values"
                ));
            }
        }
    }
    Ok(())
}

fn operator_ok(op: &str) -> bool {
    let op = op
        .strip_prefix("ForAnyValue:")
        .or_else(|| op.strip_prefix("ForAllValues:"))
        .unwrap_or(op);
    let op = op.strip_suffix("IfExists").unwrap_or(op);
    OPERATORS.contains(&op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trust() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    }

    fn managed() -> Value {
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": true}}}})
    }

    #[test]
    fn single_values_equal_one_element_lists() {
        let a = managed();
        let b = json!({"Statement": [{"Resource": ["*"], "Effect": "Allow",
            "Condition": {"Bool": {"aws:SecureTransport": ["true"]}},
            "Action": ["s3:ListBucket", "s3:GetObject", "s3:GetObject"]}], "Version": "2012-10-17"});
        assert!(same(&a, &b));
        let t = json!({"Statement": {"Action": ["sts:AssumeRole"], "Effect": "Allow",
            "Principal": {"Service": ["ec2.amazonaws.com"]}}, "Version": "2012-10-17"});
        assert!(same(&trust(), &t));
    }

    #[test]
    fn real_differences_are_differences() {
        let mut b = managed();
        b["Statement"]["Effect"] = json!("Deny");
        assert!(!same(&managed(), &b));
        let mut c = managed();
        c["Statement"]["Action"] = json!("s3:GetObject");
        assert!(!same(&managed(), &c));
        let mut d = managed();
        d["Version"] = json!("2008-10-17");
        assert!(!same(&managed(), &d));
        // Statement order is kept.
        let two = |a: &str, b: &str| {
            json!({"Statement": [
                {"Effect": "Allow", "Action": a, "Resource": "*"},
                {"Effect": "Allow", "Action": b, "Resource": "*"}]})
        };
        assert!(!same(&two("s3:A", "s3:B"), &two("s3:B", "s3:A")));
    }

    #[test]
    fn normal_form_sorts_keys_and_lists() {
        let n = normalize(&managed());
        assert_eq!(
            n.to_string(),
            r#"{"Statement":[{"Action":["s3:GetObject","s3:ListBucket"],"Condition":{"Bool":{"aws:SecureTransport":["true"]}},"Effect":"Allow","Resource":["*"]}],"Version":"2012-10-17"}"#
        );
    }

    #[test]
    fn documents_returned_percent_encoded_are_decoded() {
        let encoded = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%7B%22Effect%22%3A%20%22Allow%22%2C%20%22Principal%22%3A%20%7B%22Service%22%3A%20%22ec2.amazonaws.com%22%7D%2C%20%22Action%22%3A%20%22sts%3AAssumeRole%22%7D%5D%7D";
        let doc = parse_returned(encoded).unwrap();
        assert!(same(&doc, &trust()));
        // Plain JSON (with a literal %) is taken as it is.
        let plain = r#"{"Statement": {"Effect": "Allow", "Action": "s3:x", "Resource": "arn:aws:s3:::a%b/*"}}"#;
        assert_eq!(
            parse_returned(plain).unwrap()["Statement"]["Resource"],
            json!("arn:aws:s3:::a%b/*")
        );
        assert_eq!(percent_decode("a+b%2Fc").unwrap(), "a+b/c");
        assert!(percent_decode("%zz").is_err());
        assert!(parse_returned("%7Bnot json").is_err());
    }

    #[test]
    fn grammar_accepts_good_documents() {
        check(&trust(), DocKind::Trust).unwrap();
        check(&managed(), DocKind::Identity).unwrap();
        check(
            &json!({"Statement": [{"Sid": "Read1", "Effect": "Deny", "NotAction": "iam:*",
                "NotResource": ["arn:aws:iam::123456789012:role/x"],
                "Condition": {"ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["a", "b"]},
                              "NumericLessThan": {"aws:MultiFactorAuthAge": 3600}}}]}),
            DocKind::Identity,
        )
        .unwrap();
        check(
            &json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*",
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]}}),
            DocKind::Trust,
        )
        .unwrap();
        // A value not known yet (plan) is not judged.
        check(
            &json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject",
                "Resource": "(known after apply: bucket.outputs.arn)/*"}}),
            DocKind::Identity,
        )
        .unwrap();
    }

    #[test]
    fn grammar_rejects_bad_documents() {
        let cases = [
            (json!("text"), DocKind::Identity, "must be a mapping"),
            (
                json!({"Version": "2013-01-01", "Statement": []}),
                DocKind::Identity,
                "Version: \"2013-01-01\" is not",
            ),
            (
                json!({"Version": "2012-10-17"}),
                DocKind::Identity,
                "Statement: is required",
            ),
            (
                json!({"Statement": []}),
                DocKind::Identity,
                "at least one statement",
            ),
            (
                json!({"Statement": "x"}),
                DocKind::Identity,
                "must be a statement or a list",
            ),
            (
                json!({"Statment": {}}),
                DocKind::Identity,
                "unknown element \"Statment\"",
            ),
            (
                json!({"Statement": {"Effect": "Maybe", "Action": "s3:x", "Resource": "*"}}),
                DocKind::Identity,
                "Statement[0].Effect: \"Maybe\" is not Allow or Deny",
            ),
            (
                json!({"Statement": {"Action": "s3:x", "Resource": "*"}}),
                DocKind::Identity,
                "Statement[0].Effect: is required",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
                DocKind::Identity,
                "Statement[0]: needs Action or NotAction",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "x", "NotAction": "y", "Resource": "*"}]}),
                DocKind::Identity,
                "has both Action and NotAction",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]}),
                DocKind::Identity,
                "Statement[0].Action: \"GetObject\" is not an action",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}),
                DocKind::Identity,
                "Statement[0].Action: must not be empty",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:x"}]}),
                DocKind::Identity,
                "needs Resource or NotResource",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:x", "Resource": "my-bucket"}]}),
                DocKind::Identity,
                "Statement[0].Resource: \"my-bucket\" is not a resource",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:x", "Resource": "*", "Principal": "*"}]}),
                DocKind::Identity,
                "Statement[0].Principal: a managed policy",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}),
                DocKind::Trust,
                "needs Principal or NotPrincipal",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "*", "Resource": "*"}]}),
                DocKind::Trust,
                "Statement[0].Resource: a trust policy",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Human": "me"}}]}),
                DocKind::Trust,
                "unknown principal kind \"Human\"",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "ec2"}]}),
                DocKind::Trust,
                "Statement[0].Principal: must be \"*\" or a mapping",
            ),
            (
                json!({"Statement": [{"Sid": "no spaces", "Effect": "Allow", "Action": "s3:x", "Resource": "*"}]}),
                DocKind::Identity,
                "Sid: \"no spaces\" may contain only letters and digits",
            ),
            (
                json!({"Statement": [
                    {"Sid": "A", "Effect": "Allow", "Action": "s3:x", "Resource": "*"},
                    {"Sid": "A", "Effect": "Deny", "Action": "s3:y", "Resource": "*"}]}),
                DocKind::Identity,
                "Statement[1].Sid: \"A\" is used by another statement",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:x", "Resource": "*", "Condition": {"StringEqualz": {"k": "v"}}}]}),
                DocKind::Identity,
                "\"StringEqualz\" is not a condition operator",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:x", "Resource": "*", "Condition": {"StringEquals": {"k": {"deep": 1}}}}]}),
                DocKind::Identity,
                "Condition.StringEquals.k: must be a value",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:x", "Resource": "*", "Effects": "x"}]}),
                DocKind::Identity,
                "unknown element \"Effects\"",
            ),
        ];
        for (doc, kind, want) in cases {
            let e = check(&doc, kind).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
    }

    #[test]
    fn managed_policies_have_a_size_limit() {
        let actions: Vec<String> = (0..700).map(|i| format!("s3:Action{i:04}")).collect();
        let doc = json!({"Statement": {"Effect": "Allow", "Action": actions, "Resource": "*"}});
        let e = check(&doc, DocKind::Identity).unwrap_err();
        assert!(e.contains("a managed policy may have 6144"), "{e}");
        // Trust policies have an account quota lint cannot know.
        let trust = json!({"Statement": {"Effect": "Allow", "Action": actions, "Principal": "*"}});
        check(&trust, DocKind::Trust).unwrap();
    }
}
