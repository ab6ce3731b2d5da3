//! The functions templates may call, with Go/sprig argument order (a pipe's value comes last).
//!
//! Each function is a plain `fn(&[Value]) -> Result<Value, String>` so it can be unit-tested
//! directly and registered with handlebars through one adapter.

use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;

/// A template function: its name, how many arguments it takes, and what it does.
pub struct Func {
    pub name: &'static str,
    pub min_args: usize,
    /// `None` = any number.
    pub max_args: Option<usize>,
    pub call: fn(&[Value]) -> Result<Value, String>,
    pub usage: &'static str,
}

/// Every function a Katalog template may call.
pub static FUNCTIONS: &[Func] = &[
    Func {
        name: "default",
        min_args: 1,
        max_args: Some(2),
        call: default,
        usage: "default DEFAULT VALUE",
    },
    Func {
        name: "required",
        min_args: 2,
        max_args: Some(2),
        call: required,
        usage: "required MESSAGE VALUE",
    },
    Func {
        name: "upper",
        min_args: 1,
        max_args: Some(1),
        call: upper,
        usage: "upper TEXT",
    },
    Func {
        name: "lower",
        min_args: 1,
        max_args: Some(1),
        call: lower,
        usage: "lower TEXT",
    },
    Func {
        name: "title",
        min_args: 1,
        max_args: Some(1),
        call: title,
        usage: "title TEXT",
    },
    Func {
        name: "trim",
        min_args: 1,
        max_args: Some(1),
        call: trim,
        usage: "trim TEXT",
    },
    Func {
        name: "trimPrefix",
        min_args: 2,
        max_args: Some(2),
        call: trim_prefix,
        usage: "trimPrefix PREFIX TEXT",
    },
    Func {
        name: "trimSuffix",
        min_args: 2,
        max_args: Some(2),
        call: trim_suffix,
        usage: "trimSuffix SUFFIX TEXT",
    },
    Func {
        name: "trunc",
        min_args: 2,
        max_args: Some(2),
        call: trunc,
        usage: "trunc N TEXT",
    },
    Func {
        name: "replace",
        min_args: 3,
        max_args: Some(3),
        call: replace,
        usage: "replace OLD NEW TEXT",
    },
    Func {
        name: "quote",
        min_args: 1,
        max_args: None,
        call: quote,
        usage: "quote TEXT",
    },
    Func {
        name: "b64enc",
        min_args: 1,
        max_args: Some(1),
        call: b64enc,
        usage: "b64enc TEXT",
    },
    Func {
        name: "b64dec",
        min_args: 1,
        max_args: Some(1),
        call: b64dec,
        usage: "b64dec TEXT",
    },
    Func {
        name: "sha256sum",
        min_args: 1,
        max_args: Some(1),
        call: sha256sum,
        usage: "sha256sum TEXT",
    },
    Func {
        name: "toJson",
        min_args: 1,
        max_args: Some(1),
        call: to_json,
        usage: "toJson VALUE",
    },
    Func {
        name: "toString",
        min_args: 1,
        max_args: Some(1),
        call: to_string,
        usage: "toString VALUE",
    },
    Func {
        name: "int",
        min_args: 1,
        max_args: Some(1),
        call: int,
        usage: "int VALUE",
    },
    Func {
        name: "join",
        min_args: 2,
        max_args: Some(2),
        call: join,
        usage: "join SEPARATOR LIST",
    },
    Func {
        name: "cat",
        min_args: 1,
        max_args: None,
        call: cat,
        usage: "cat VALUE...",
    },
    Func {
        name: "index",
        min_args: 2,
        max_args: None,
        call: index,
        usage: "index VALUE KEY...",
    },
    Func {
        name: "contains",
        min_args: 2,
        max_args: Some(2),
        call: contains,
        usage: "contains SUBSTRING TEXT",
    },
    Func {
        name: "hasPrefix",
        min_args: 2,
        max_args: Some(2),
        call: has_prefix,
        usage: "hasPrefix PREFIX TEXT",
    },
    Func {
        name: "hasSuffix",
        min_args: 2,
        max_args: Some(2),
        call: has_suffix,
        usage: "hasSuffix SUFFIX TEXT",
    },
];

/// The longest text a function or a template may produce (1 MiB, a ConfigMap's limit): a
/// longer one is an error, so no CR value can make rendering unbounded.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// `v`, or an error when it is text longer than [`MAX_TEXT_BYTES`]. (Only text grows: the other
/// functions return parts of their arguments.)
pub fn bounded(v: Value) -> Result<Value, String> {
    match &v {
        Value::String(t) if t.len() > MAX_TEXT_BYTES => Err(too_long(t.len())),
        _ => Ok(v),
    }
}

fn too_long(n: usize) -> String {
    format!(
        "the rendered text would be {n} bytes, over the limit of {MAX_TEXT_BYTES} bytes (1 MiB)"
    )
}

/// Look a function up by name.
pub fn lookup(name: &str) -> Option<&'static Func> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// How a value prints inside text (Go's fmt for scalars; JSON for lists and maps; nil is empty).
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Empty in sprig's sense: nil, "", 0, false, empty list or map.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn last(a: &[Value]) -> &Value {
    a.last().unwrap_or(&Value::Null)
}
fn text(a: &[Value]) -> String {
    to_text(last(a))
}
fn s(v: String) -> Result<Value, String> {
    Ok(Value::String(v))
}

fn default(a: &[Value]) -> Result<Value, String> {
    let given = if a.len() == 2 { &a[1] } else { &Value::Null };
    Ok(if is_empty(given) {
        a[0].clone()
    } else {
        given.clone()
    })
}
fn required(a: &[Value]) -> Result<Value, String> {
    if is_empty(&a[1]) {
        Err(to_text(&a[0]))
    } else {
        Ok(a[1].clone())
    }
}
fn upper(a: &[Value]) -> Result<Value, String> {
    s(text(a).to_uppercase())
}
fn lower(a: &[Value]) -> Result<Value, String> {
    s(text(a).to_lowercase())
}
fn title(a: &[Value]) -> Result<Value, String> {
    let t = text(a);
    let mut out = String::with_capacity(t.len());
    let mut start = true;
    for c in t.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    s(out)
}
fn trim(a: &[Value]) -> Result<Value, String> {
    s(text(a).trim().to_string())
}
fn trim_prefix(a: &[Value]) -> Result<Value, String> {
    let (p, t) = (to_text(&a[0]), text(a));
    s(t.strip_prefix(p.as_str()).unwrap_or(&t).to_string())
}
fn trim_suffix(a: &[Value]) -> Result<Value, String> {
    let (p, t) = (to_text(&a[0]), text(a));
    s(t.strip_suffix(p.as_str()).unwrap_or(&t).to_string())
}
fn as_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| format!("{n} is not an integer")),
        Value::String(t) => t
            .trim()
            .parse()
            .map_err(|_| format!("{t:?} is not an integer")),
        Value::Bool(b) => Ok(*b as i64),
        Value::Null => Ok(0),
        other => Err(format!("{other} is not an integer")),
    }
}
fn trunc(a: &[Value]) -> Result<Value, String> {
    let n = as_int(&a[0])?;
    let t = text(a);
    let len = t.chars().count() as i64;
    // sprig: a negative n keeps the last |n| characters.
    let out: String = if n >= 0 {
        t.chars().take(n as usize).collect()
    } else {
        t.chars().skip((len + n).max(0) as usize).collect()
    };
    s(out)
}
fn replace(a: &[Value]) -> Result<Value, String> {
    let (old, new, t) = (to_text(&a[0]), to_text(&a[1]), text(a));
    if old.is_empty() {
        // Go's strings.Replace would insert NEW between every character: output quadratic in
        // CR-sized arguments, and never what a Katalog means.
        return Err("replace: the text to replace (its first argument) is empty".into());
    }
    // The size is known before building it, so a huge result is refused without being made.
    let grows = new.len().saturating_sub(old.len());
    let size = t
        .len()
        .saturating_add(t.matches(old.as_str()).count().saturating_mul(grows));
    if size > MAX_TEXT_BYTES {
        return Err(format!("replace: {}", too_long(size)));
    }
    s(t.replace(&old, &new))
}
fn quote(a: &[Value]) -> Result<Value, String> {
    let parts: Vec<String> = a
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| Value::String(to_text(v)).to_string())
        .collect();
    s(parts.join(" "))
}
fn b64enc(a: &[Value]) -> Result<Value, String> {
    s(base64::engine::general_purpose::STANDARD.encode(text(a)))
}
fn b64dec(a: &[Value]) -> Result<Value, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text(a).trim())
        .map_err(|e| format!("b64dec: not base64: {e}"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "b64dec: decoded bytes are not UTF-8 text".to_string())
}
fn sha256sum(a: &[Value]) -> Result<Value, String> {
    let d = sha2::Sha256::digest(text(a).as_bytes());
    s(d.iter().map(|b| format!("{b:02x}")).collect())
}
fn to_json(a: &[Value]) -> Result<Value, String> {
    s(last(a).to_string())
}
fn to_string(a: &[Value]) -> Result<Value, String> {
    s(text(a))
}
fn int(a: &[Value]) -> Result<Value, String> {
    as_int(last(a)).map(Value::from)
}
fn join(a: &[Value]) -> Result<Value, String> {
    let sep = to_text(&a[0]);
    match &a[1] {
        Value::Array(items) => s(items.iter().map(to_text).collect::<Vec<_>>().join(&sep)),
        Value::Null => s(String::new()),
        other => s(to_text(other)),
    }
}
fn cat(a: &[Value]) -> Result<Value, String> {
    s(a.iter()
        .filter(|v| !v.is_null())
        .map(to_text)
        .collect::<Vec<_>>()
        .join(" "))
}
fn index(a: &[Value]) -> Result<Value, String> {
    let mut cur = &a[0];
    for k in &a[1..] {
        cur = match (cur, k) {
            (Value::Object(m), k) => m.get(&to_text(k)).unwrap_or(&Value::Null),
            (Value::Array(v), k) => {
                let i = as_int(k)?;
                v.get(usize::try_from(i).map_err(|_| format!("index {i} out of range"))?)
                    .unwrap_or(&Value::Null)
            }
            _ => &Value::Null,
        };
    }
    Ok(cur.clone())
}
fn contains(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(text(a).contains(&to_text(&a[0]))))
}
fn has_prefix(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(text(a).starts_with(&to_text(&a[0]))))
}
fn has_suffix(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(text(a).ends_with(&to_text(&a[0]))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
        (lookup(name).unwrap().call)(&args)
    }

    #[test]
    fn replace_refuses_an_empty_pattern_and_results_over_the_limit() {
        let e = call("replace", vec![json!(""), json!("x"), json!("abc")]).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        // 1 MiB of `a`s each replaced by 1 KiB: refused from the count, never built.
        let text = "a".repeat(MAX_TEXT_BYTES);
        let big = "b".repeat(1024);
        let e = call("replace", vec![json!("a"), json!(big), json!(text)]).unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        // Shrinking replacements of long text are fine.
        let out = call("replace", vec![json!("aa"), json!("a"), json!(text)]).unwrap();
        assert_eq!(out.as_str().unwrap().len(), MAX_TEXT_BYTES / 2);
    }

    #[test]
    fn bounded_refuses_text_over_the_limit_only() {
        assert!(bounded(json!("a".repeat(MAX_TEXT_BYTES))).is_ok());
        assert!(bounded(json!("a".repeat(MAX_TEXT_BYTES + 1))).is_err());
        assert!(bounded(json!({"a": 1})).is_ok());
    }

    #[test]
    fn string_functions() {
        assert_eq!(call("upper", vec![json!("ab")]).unwrap(), json!("AB"));
        assert_eq!(
            call("trunc", vec![json!(3), json!("abcdef")]).unwrap(),
            json!("abc")
        );
        assert_eq!(
            call("trunc", vec![json!(-2), json!("abcdef")]).unwrap(),
            json!("ef")
        );
        assert_eq!(
            call("replace", vec![json!("."), json!("-"), json!("a.b.c")]).unwrap(),
            json!("a-b-c")
        );
        assert_eq!(
            call("quote", vec![json!("a\"b")]).unwrap(),
            json!("\"a\\\"b\"")
        );
        assert_eq!(
            call("b64dec", vec![call("b64enc", vec![json!("hi")]).unwrap()]).unwrap(),
            json!("hi")
        );
        assert_eq!(
            call("sha256sum", vec![json!("abc")]).unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            call("title", vec![json!("hello world")]).unwrap(),
            json!("Hello World")
        );
    }

    #[test]
    fn defaults_and_types() {
        assert_eq!(
            call("default", vec![json!("small"), Value::Null]).unwrap(),
            json!("small")
        );
        assert_eq!(
            call("default", vec![json!("small"), json!("big")]).unwrap(),
            json!("big")
        );
        assert_eq!(
            call("default", vec![json!("small")]).unwrap(),
            json!("small")
        );
        assert_eq!(call("int", vec![json!("42")]).unwrap(), json!(42));
        assert!(call("int", vec![json!("x")]).is_err());
        assert_eq!(
            call("join", vec![json!(","), json!(["a", 1])]).unwrap(),
            json!("a,1")
        );
        assert_eq!(
            call("toJson", vec![json!({"a": 1})]).unwrap(),
            json!("{\"a\":1}")
        );
        assert_eq!(
            call("index", vec![json!({"a": [1, 2]}), json!("a"), json!(1)]).unwrap(),
            json!(2)
        );
        assert_eq!(
            call("required", vec![json!("need x"), json!("")]).unwrap_err(),
            "need x"
        );
    }
}
