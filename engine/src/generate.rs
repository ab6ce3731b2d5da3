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
