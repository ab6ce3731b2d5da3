//! `generate:` on a Secret: values made once from the operating system's random source
//! (composition.md, rule 6).
//!
//! The engine only says which keys to make and how; the agent calls [`fill`] with the Secret as
//! it lives in the cluster, so a key that already exists is kept across reconciles, agent
//! restarts and Katalog edits, and a missing one is drawn from `getrandom` (the kernel's CSPRNG).
//! Characters are drawn uniformly by rejection sampling: no modulo bias.

use std::ops::RangeInclusive;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::katalog::Generate;

/// Letters and digits, the default alphabet.
pub const ALPHANUMERIC: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Lengths a Katalog may ask for.
pub const LENGTHS: RangeInclusive<u64> = 8..=4096;
/// The length when none is given.
pub const DEFAULT_LENGTH: usize = 32;

/// The annotation recording when a rotating Secret was made (RFC 3339), which `rotateAfter`
/// counts from.
pub const GENERATED_AT: &str = "orkestra.orkspace.io/generated-at";

/// Whether the live Secret `live` of a child with `rotateAfter` (`rotate_after_seconds`) is due
/// to be made again at `now`: its [`GENERATED_AT`] annotation, or else its creationTimestamp, is
/// at least that old. A Secret with neither readable is due (upstream makes it again).
pub fn rotation_due(
    live: &Value,
    rotate_after_seconds: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let made = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(GENERATED_AT))
        .or_else(|| live.pointer("/metadata/creationTimestamp"))
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let Some(made) = made else {
        return true;
    };
    let age = now.signed_duration_since(made.with_timezone(&chrono::Utc));
    age.num_seconds() >= i64::try_from(rotate_after_seconds).unwrap_or(i64::MAX)
}

/// Stamp `desired` (a rotating Secret about to be made) with [`GENERATED_AT`] = `now`.
pub fn stamp_generated_at(desired: &mut Value, now: chrono::DateTime<chrono::Utc>) {
    if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(
                GENERATED_AT.into(),
                Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            );
        }
    }
}

/// Why a value could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the operating system's random source: {0}")]
pub struct RandomUnavailable(pub String);

/// An `alphabet:` value: a named set (`alphanumeric`, `hex`, `base64url`) or the characters
/// themselves (at least 2, at most 256, no repeats).
pub fn alphabet(s: &str) -> Result<String, String> {
    let named = match s {
        "alphanumeric" => Some(ALPHANUMERIC.to_string()),
        "hex" => Some("0123456789abcdef".to_string()),
        "base64url" => Some(format!("{ALPHANUMERIC}-_")),
        _ => None,
    };
    if let Some(a) = named {
        return Ok(a);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut unique = chars.clone();
    unique.sort_unstable();
    unique.dedup();
    if chars.len() < 2 || chars.len() > 256 || unique.len() != chars.len() {
        return Err(format!(
            "alphabet must be alphanumeric, hex, base64url or 2 to 256 distinct characters, found {s:?}"
        ));
    }
    Ok(s.to_string())
}

/// A new value of `g.length` characters of `g.alphabet`.
pub fn value(g: &Generate) -> Result<String, RandomUnavailable> {
    let chars: Vec<char> = g.alphabet.chars().collect();
    let n = chars.len().clamp(1, 256);
    // The largest multiple of n that fits in a byte: bytes at or above it are redrawn.
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(g.length);
    let mut buf = [0u8; 64];
    while out.chars().count() < g.length {
        getrandom::fill(&mut buf).map_err(|e| RandomUnavailable(e.to_string()))?;
        for &b in &buf {
            if (b as usize) < limit && out.chars().count() < g.length {
                out.push(chars[b as usize % n]);
            }
        }
    }
    Ok(out)
}

/// Put every generated key into `object` (a Secret about to be written): the value `live`
/// already holds for it, else a new one. Returns the keys that were made new.
pub fn fill(
    object: &mut Value,
    live: Option<&Value>,
    keys: &[Generate],
) -> Result<Vec<String>, RandomUnavailable> {
    let mut made = Vec::new();
    if keys.is_empty() {
        return Ok(made);
    }
    let Some(obj) = object.as_object_mut() else {
        return Ok(made);
    };
    let data = obj
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let data = data.as_object_mut().expect("made an object");
    for g in keys {
        let kept = live
            .and_then(|l| {
                l.pointer(&format!(
                    "/data/{}",
                    g.key.replace('~', "~0").replace('/', "~1")
                ))
            })
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty());
        let encoded = match kept {
            Some(v) => v.to_string(),
            None => {
                made.push(g.key.clone());
                base64::engine::general_purpose::STANDARD.encode(value(g)?)
            }
        };
        data.insert(g.key.clone(), Value::String(encoded));
    }
    Ok(made)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_rotating_secret_is_due_once_it_is_that_old_or_says_nothing() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let made = |at: &str| serde_json::json!({"metadata": {"annotations": {GENERATED_AT: at}, "creationTimestamp": "2020-01-01T00:00:00Z"}});
        let day = 86_400;
        assert!(!rotation_due(&made("2026-12-04T00:00:00Z"), day, now));
        assert!(rotation_due(&made("2026-12-03T12:00:00Z"), day, now));
        // Without the annotation, the creation time counts; with neither readable, it is due.
        let created =
            serde_json::json!({"metadata": {"creationTimestamp": "2026-12-04T11:00:00Z"}});
        assert!(!rotation_due(&created, day, now));
        assert!(rotation_due(&made("yesterday"), day, now));
        assert!(rotation_due(&serde_json::json!({}), day, now));
        let mut desired = serde_json::json!({"metadata": {"name": "s"}});
        stamp_generated_at(&mut desired, now);
        assert_eq!(
            desired["metadata"]["annotations"][GENERATED_AT],
            "2026-12-04T12:00:00Z"
        );
        assert!(!rotation_due(&desired, 1, now));
    }

    use super::*;
    use serde_json::json;

    fn g(len: usize, alphabet: &str) -> Generate {
        Generate {
            key: "password".into(),
            length: len,
            alphabet: alphabet.into(),
        }
    }

    #[test]
    fn values_have_the_length_and_alphabet_and_differ() {
        let a = value(&g(32, ALPHANUMERIC)).unwrap();
        let b = value(&g(32, ALPHANUMERIC)).unwrap();
        assert_eq!(a.chars().count(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b, "two draws of 190 bits collided");
        let hex = value(&g(100, "0123456789abcdef")).unwrap();
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn every_character_of_the_alphabet_turns_up() {
        let v = value(&g(4000, "abc")).unwrap();
        for c in ['a', 'b', 'c'] {
            let n = v.chars().filter(|&x| x == c).count();
            assert!((1000..1700).contains(&n), "{c}: {n} of 4000");
        }
    }

    #[test]
    fn an_existing_key_is_kept_and_a_missing_one_made() {
        let live = json!({"data": {"password": "a2VwdA=="}});
        let mut obj = json!({"metadata": {"name": "s"}});
        let made = fill(&mut obj, Some(&live), &[g(16, ALPHANUMERIC)]).unwrap();
        assert!(made.is_empty());
        assert_eq!(obj["data"]["password"], "a2VwdA==");
        let mut fresh = json!({"metadata": {"name": "s"}, "data": {"user": "YXBw"}});
        let made = fill(&mut fresh, None, &[g(16, ALPHANUMERIC)]).unwrap();
        assert_eq!(made, ["password"]);
        assert_eq!(fresh["data"]["user"], "YXBw");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(fresh["data"]["password"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw.len(), 16);
    }

    #[test]
    fn alphabets_are_named_or_listed() {
        assert_eq!(alphabet("hex").unwrap(), "0123456789abcdef");
        assert_eq!(alphabet("xyz").unwrap(), "xyz");
        assert!(alphabet("aa").is_err());
        assert!(alphabet("a").is_err());
    }
}
