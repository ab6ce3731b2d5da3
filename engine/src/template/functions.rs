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
    // Upstream Orkestra's notes (Go builtins included), in upstream's argument order.
    f("toLower", 1, Some(1), lower, "toLower TEXT"),
    f("toUpper", 1, Some(1), upper, "toUpper TEXT"),
    f("trimSpace", 1, Some(1), trim, "trimSpace TEXT"),
    f("toInt", 1, Some(1), int, "toInt VALUE"),
    f("concat", 1, None, concat, "concat TEXT..."),
    f("coalesce", 1, None, coalesce, "coalesce VALUE..."),
    f("empty", 1, Some(1), empty, "empty VALUE"),
    f("notEmpty", 1, Some(1), not_empty, "notEmpty VALUE"),
    f(
        "ternary",
        3,
        Some(3),
        ternary,
        "ternary CONDITION IF_TRUE IF_FALSE",
    ),
    f(
        "boolTernary",
        3,
        Some(3),
        bool_ternary,
        "boolTernary BOOL IF_TRUE IF_FALSE",
    ),
    f("eq", 2, None, eq, "eq VALUE OTHER..."),
    f("ne", 2, Some(2), ne, "ne VALUE OTHER"),
    f("and", 1, None, and, "and VALUE..."),
    f("or", 1, None, or, "or VALUE..."),
    f("not", 1, Some(1), not, "not VALUE"),
    f("len", 1, Some(1), len, "len VALUE"),
    f("printf", 1, None, printf, "printf FORMAT VALUE..."),
    f("split", 2, Some(2), split, "split TEXT SEPARATOR"),
    f("repeat", 2, Some(2), repeat, "repeat TEXT COUNT"),
    f(
        "camelToKebab",
        1,
        Some(1),
        camel_to_kebab,
        "camelToKebab TEXT",
    ),
    f("add", 2, Some(2), add, "add A B"),
    f("sub", 2, Some(2), sub, "sub A B"),
    f("mul", 2, Some(2), mul, "mul A B"),
    f("div", 2, Some(2), div, "div A B"),
    f("get", 1, None, get, "get OBJECT KEY..."),
    f("phase", 1, Some(1), phase, "phase OBJECT"),
    f(
        "resourceExists",
        1,
        Some(1),
        resource_exists,
        "resourceExists OBJECT",
    ),
    f(
        "readyReplicas",
        1,
        Some(1),
        ready_replicas,
        "readyReplicas OBJECT",
    ),
    f(
        "allReplicasReady",
        1,
        Some(1),
        all_replicas_ready,
        "allReplicasReady OBJECT",
    ),
    f(
        "replicasReady",
        1,
        Some(1),
        all_replicas_ready,
        "replicasReady OBJECT",
    ),
    f(
        "jobSucceeded",
        1,
        Some(1),
        job_succeeded,
        "jobSucceeded OBJECT",
    ),
    f(
        "cronJobLastScheduleTime",
        1,
        Some(1),
        cron_last_schedule,
        "cronJobLastScheduleTime CRONJOB",
    ),
];

/// A table row (the upstream functions are many; one line each).
const fn f(
    name: &'static str,
    min_args: usize,
    max_args: Option<usize>,
    call: fn(&[Value]) -> Result<Value, String>,
    usage: &'static str,
) -> Func {
    Func {
        name,
        min_args,
        max_args,
        call,
        usage,
    }
}

/// Upstream Orkestra's notes orkestra has no counterpart for yet (pods and events through
/// enrich, cron, semver, time, quantities, …): a template using one gets an error naming it as
/// upstream's, not "unknown function".
pub const UPSTREAM_NOT_SUPPORTED: &[&str] = &[
    "hasCrashingPod",
    "podCount",
    "readyPodCount",
    "hasWarnings",
    "warningCount",
    "firstWarningMessage",
    "deploymentReplicaSetCount",
    "oldDeploymentReplicaSets",
    "podNames",
    "podMaxRestarts",
    "podContainerReasons",
    "serviceHost",
    "serviceClusterIP",
    "fullImage",
    "appLabel",
    "jobFirstExitCode",
    "jobFailed",
    "jobActive",
    "availableReplicas",
    "updatedReplicas",
    "desiredReplicas",
    "rolloutComplete",
    "hasCondition",
    "conditionReason",
    "conditionMessage",
    "isTerminating",
    "generation",
    "observedGeneration",
    "isSynced",
    "ownerKind",
    "ownerName",
    "resourceCPU",
    "resourceMemory",
    "containerImage",
    "containerEnv",
    "containerPort",
    "cronJobNextScheduleTime",
    "cronFromAny",
    "cronFromMap",
    "cronNormalize",
    "cronDescribe",
    "timeAgo",
    "isExpired",
    "semverCompare",
    "promAboveThreshold",
    "getLabel",
    "getAnnotation",
    "isDNS1123Subdomain",
    "boolDefault",
    "eqTernary",
    "truncate",
    "slugify",
    "truncateName",
    "toFloat",
    "toBool",
    "toList",
    "typeOf",
    "listHas",
    "listGet",
    "listLen",
    "mapGet",
    "mapKeys",
    "mapValues",
    "mapPick",
    "mapOmit",
    "getOr",
    "getStringOr",
    "getIntOr",
    "getBoolOr",
    "clamp",
    "abs",
    "min",
    "max",
    "mod",
];

/// Functions of upstream's notes that take a CR value first and a literal second where sprig
/// puts the literal first (`hasPrefix .spec.image "myorg/"` and sprig's `hasPrefix "myorg/"
/// .spec.image`): both orders mean the same, the path being the value.
pub const VALUE_FIRST_UPSTREAM: &[&str] = &[
    "default",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "trimPrefix",
    "trimSuffix",
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

fn concat(a: &[Value]) -> Result<Value, String> {
    s(a.iter().map(to_text).collect())
}
fn coalesce(a: &[Value]) -> Result<Value, String> {
    Ok(a.iter()
        .find(|v| !is_empty(v))
        .cloned()
        .unwrap_or(Value::Null))
}
fn empty(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(is_empty(&a[0])))
}
fn not_empty(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(!is_empty(&a[0])))
}
fn ternary(a: &[Value]) -> Result<Value, String> {
    Ok(if is_empty(&a[0]) {
        a[2].clone()
    } else {
        a[1].clone()
    })
}
fn bool_ternary(a: &[Value]) -> Result<Value, String> {
    let b = match &a[0] {
        Value::Bool(b) => *b,
        Value::String(t) if t == "true" || t == "false" => t == "true",
        other => return Err(format!("boolTernary: {other} is not a boolean")),
    };
    Ok(if b { a[1].clone() } else { a[2].clone() })
}
/// Go's `eq`: equal to any of the others; numbers compare by value, text with text.
fn eq(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(a[1..].iter().any(|b| same(&a[0], b))))
}
fn ne(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(!same(&a[0], &a[1])))
}
fn same(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Number(m), Value::Number(n)) => m.as_f64() == n.as_f64(),
        (Value::Null, Value::String(t)) | (Value::String(t), Value::Null) => t.is_empty(),
        _ => x == y,
    }
}
/// Go's `and`: the first empty argument, or the last.
fn and(a: &[Value]) -> Result<Value, String> {
    Ok(a.iter().find(|v| is_empty(v)).unwrap_or(last(a)).clone())
}
/// Go's `or`: the first non-empty argument, or the last.
fn or(a: &[Value]) -> Result<Value, String> {
    Ok(a.iter().find(|v| !is_empty(v)).unwrap_or(last(a)).clone())
}
fn not(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(is_empty(&a[0])))
}
fn len(a: &[Value]) -> Result<Value, String> {
    Ok(Value::from(match &a[0] {
        Value::String(t) => t.chars().count(),
        Value::Array(v) => v.len(),
        Value::Object(m) => m.len(),
        Value::Null => 0,
        other => return Err(format!("len: {other} has no length")),
    }))
}
/// Go's `printf` for the verbs Katalogs use: `%s`, `%v`, `%d`, `%q`, `%%`.
fn printf(a: &[Value]) -> Result<Value, String> {
    let format = to_text(&a[0]);
    let mut args = a[1..].iter();
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("printf: the format ends with `%`")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = args
            .next()
            .ok_or_else(|| format!("printf: `%{verb}` has no argument"))?;
        match verb {
            's' | 'v' => out.push_str(&to_text(v)),
            'd' => out.push_str(&as_int(v)?.to_string()),
            'q' => out.push_str(&Value::String(to_text(v)).to_string()),
            other => {
                return Err(format!(
                    "printf: verb `%{other}` is not supported (use %s, %v, %d or %q)"
                ))
            }
        }
        if out.len() > MAX_TEXT_BYTES {
            return Err(format!("printf: {}", too_long(out.len())));
        }
    }
    s(out)
}
fn split(a: &[Value]) -> Result<Value, String> {
    let (t, sep) = (to_text(&a[0]), to_text(&a[1]));
    if sep.is_empty() {
        return Err("split: the separator is empty".into());
    }
    Ok(Value::Array(
        t.split(sep.as_str())
            .map(|p| Value::String(p.into()))
            .collect(),
    ))
}
fn repeat(a: &[Value]) -> Result<Value, String> {
    let t = to_text(&a[0]);
    let n =
        usize::try_from(as_int(&a[1])?).map_err(|_| "repeat: the count is negative".to_string())?;
    let size = t.len().saturating_mul(n);
    if size > MAX_TEXT_BYTES {
        return Err(format!("repeat: {}", too_long(size)));
    }
    s(t.repeat(n))
}
fn camel_to_kebab(a: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    for (i, c) in to_text(&a[0]).chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    s(out)
}
fn arith(a: &[Value], op: fn(i64, i64) -> Option<i64>, name: &str) -> Result<Value, String> {
    op(as_int(&a[0])?, as_int(&a[1])?)
        .map(Value::from)
        .ok_or_else(|| format!("{name}: overflow or division by zero"))
}
fn add(a: &[Value]) -> Result<Value, String> {
    arith(a, i64::checked_add, "add")
}
fn sub(a: &[Value]) -> Result<Value, String> {
    arith(a, i64::checked_sub, "sub")
}
fn mul(a: &[Value]) -> Result<Value, String> {
    arith(a, i64::checked_mul, "mul")
}
fn div(a: &[Value]) -> Result<Value, String> {
    arith(a, i64::checked_div, "div")
}
/// Upstream's nil-safe path: `get OBJ "status" "phase"`.
fn get(a: &[Value]) -> Result<Value, String> {
    let mut cur = &a[0];
    for k in &a[1..] {
        cur = match cur {
            Value::Object(m) => m.get(&to_text(k)).unwrap_or(&Value::Null),
            Value::Array(v) => as_int(k)
                .ok()
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| v.get(i))
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    Ok(cur.clone())
}
fn at<'v>(v: &'v Value, p: &str) -> &'v Value {
    v.pointer(p).unwrap_or(&Value::Null)
}
fn phase(a: &[Value]) -> Result<Value, String> {
    s(to_text(at(&a[0], "/status/phase")))
}
fn resource_exists(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(!is_empty(&a[0])))
}
fn ready_replicas(a: &[Value]) -> Result<Value, String> {
    Ok(Value::from(as_int(at(&a[0], "/status/readyReplicas"))?))
}
/// All the replicas a workload asks for (1 when it does not say) are ready.
fn all_replicas_ready(a: &[Value]) -> Result<Value, String> {
    if is_empty(&a[0]) {
        return Ok(Value::Bool(false));
    }
    let desired = match at(&a[0], "/spec/replicas") {
        Value::Null => 1,
        v => as_int(v)?,
    };
    Ok(Value::Bool(
        as_int(at(&a[0], "/status/readyReplicas"))? >= desired,
    ))
}
/// When a CronJob last started a Job (its status), or empty.
fn cron_last_schedule(a: &[Value]) -> Result<Value, String> {
    Ok(match at(&a[0], "/status/lastScheduleTime") {
        Value::Null => Value::String(String::new()),
        v => v.clone(),
    })
}
fn job_succeeded(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(as_int(at(&a[0], "/status/succeeded"))? > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
        (lookup(name).unwrap().call)(&args)
    }

    #[test]
    fn upstream_notes() {
        assert_eq!(call("toLower", vec![json!("AbC")]).unwrap(), json!("abc"));
        assert_eq!(call("trimSpace", vec![json!("  a ")]).unwrap(), json!("a"));
        assert_eq!(
            call("concat", vec![json!("a"), json!(1), json!("b")]).unwrap(),
            json!("a1b")
        );
        assert_eq!(
            call("coalesce", vec![json!(""), json!(null), json!("x")]).unwrap(),
            json!("x")
        );
        assert_eq!(
            call("ternary", vec![json!(true), json!("y"), json!("n")]).unwrap(),
            json!("y")
        );
        assert_eq!(
            call("ternary", vec![json!(""), json!("y"), json!("n")]).unwrap(),
            json!("n")
        );
        assert!(call("boolTernary", vec![json!("yes"), json!(1), json!(2)]).is_err());
        assert_eq!(
            call("eq", vec![json!(2), json!(1), json!(2.0)]).unwrap(),
            json!(true)
        );
        assert_eq!(
            call("eq", vec![json!(null), json!("")]).unwrap(),
            json!(true)
        );
        assert_eq!(
            call("or", vec![json!(""), json!(0), json!("z")]).unwrap(),
            json!("z")
        );
        assert_eq!(
            call("and", vec![json!("a"), json!(0), json!("z")]).unwrap(),
            json!(0)
        );
        assert_eq!(call("len", vec![json!("héllo")]).unwrap(), json!(5));
        assert_eq!(call("len", vec![json!({"a": 1})]).unwrap(), json!(1));
        assert_eq!(
            call(
                "printf",
                vec![
                    json!("%s-%d %q 100%%"),
                    json!("web"),
                    json!("3"),
                    json!("x")
                ]
            )
            .unwrap(),
            json!("web-3 \"x\" 100%")
        );
        assert!(call("printf", vec![json!("%s %s"), json!("a")])
            .unwrap_err()
            .contains("no argument"));
        assert!(call("printf", vec![json!("%x"), json!(1)])
            .unwrap_err()
            .contains("not supported"));
        assert_eq!(
            call("split", vec![json!("a,b"), json!(",")]).unwrap(),
            json!(["a", "b"])
        );
        assert!(call("repeat", vec![json!("ab"), json!(MAX_TEXT_BYTES)])
            .unwrap_err()
            .contains("over the limit"));
        assert_eq!(
            call("camelToKebab", vec![json!("myWebApp")]).unwrap(),
            json!("my-web-app")
        );
        assert_eq!(call("add", vec![json!(2), json!("3")]).unwrap(), json!(5));
        assert!(call("div", vec![json!(1), json!(0)]).is_err());
        assert!(call("mul", vec![json!(i64::MAX), json!(2)]).is_err());
    }

    #[test]
    fn upstream_kubernetes_notes() {
        let d =
            json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 2, "phase": "Running"}});
        assert_eq!(call("readyReplicas", vec![d.clone()]).unwrap(), json!(2));
        assert_eq!(
            call("allReplicasReady", vec![d.clone()]).unwrap(),
            json!(false)
        );
        let done = json!({"spec": {}, "status": {"readyReplicas": 1}});
        assert_eq!(call("replicasReady", vec![done]).unwrap(), json!(true));
        assert_eq!(
            call("allReplicasReady", vec![json!(null)]).unwrap(),
            json!(false)
        );
        assert_eq!(call("phase", vec![d.clone()]).unwrap(), json!("Running"));
        assert_eq!(call("phase", vec![json!(null)]).unwrap(), json!(""));
        assert_eq!(
            call("get", vec![d.clone(), json!("status"), json!("phase")]).unwrap(),
            json!("Running")
        );
        assert_eq!(
            call("get", vec![d, json!("nope"), json!("x")]).unwrap(),
            json!(null)
        );
        assert_eq!(
            call("resourceExists", vec![json!({})]).unwrap(),
            json!(false)
        );
        assert_eq!(
            call("jobSucceeded", vec![json!({"status": {"succeeded": 1}})]).unwrap(),
            json!(true)
        );
        let cron = json!({"status": {"lastScheduleTime": "2026-12-04T10:00:00Z"}});
        assert_eq!(
            call("cronJobLastScheduleTime", vec![cron]).unwrap(),
            json!("2026-12-04T10:00:00Z")
        );
        assert_eq!(
            call("cronJobLastScheduleTime", vec![json!(null)]).unwrap(),
            json!("")
        );
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
