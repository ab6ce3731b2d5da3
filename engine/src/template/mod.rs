//! Templates: Katalog values written in Go-template syntax, rendered with handlebars.
//!
//! Each templated scalar is parsed once (when the Katalog loads) by [`parse`], checked against the
//! function table, translated to a handlebars template and registered in the Katalog's
//! [`TemplateSet`]. Rendering a CR then evaluates each compiled scalar against the CR's JSON:
//!
//! - a scalar that is exactly one expression yields the expression's own JSON value (an integer
//!   stays an integer, a map stays a map);
//! - anything else yields a string;
//! - rendering is per scalar after YAML parsing, so a CR value can never add YAML structure.

pub mod functions;
pub mod parse;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::Value;

pub use parse::{Expr, Part};

/// Why a template could not be compiled; `offset` is a byte offset in the scalar.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    pub offset: usize,
    /// `template-syntax`, `unknown-function` or `wrong-arity`.
    pub code: &'static str,
    pub message: String,
}

/// A compiled scalar.
#[derive(Debug, Clone)]
pub enum Template {
    /// No `{{` in it: the value as written.
    Literal(Value),
    /// Exactly one expression: renders to the expression's own JSON value.
    Single { key: String, expr: Expr },
    /// Text with expressions: renders to a string.
    Mixed { key: String, parts: Vec<Part> },
}

impl Template {
    /// The CR paths this template reads.
    pub fn paths(&self) -> Vec<&[String]> {
        let mut out = Vec::new();
        match self {
            Template::Literal(_) => {}
            Template::Single { expr, .. } => expr.paths(&mut out),
            Template::Mixed { parts, .. } => parts.iter().for_each(|p| {
                if let Part::Expr(e) = p {
                    e.paths(&mut out)
                }
            }),
        }
        out
    }

    /// The single expression, if the template is one.
    pub fn single(&self) -> Option<&Expr> {
        match self {
            Template::Single { expr, .. } => Some(expr),
            _ => None,
        }
    }
}

/// All compiled templates of one Katalog, in one handlebars registry.
pub struct TemplateSet {
    hb: Handlebars<'static>,
    next: usize,
    /// User-defined notes (upstream's `notes:`): name → its expression, parsed, not yet
    /// expanded. A call of a note is replaced by its expression when a template compiles (a
    /// macro: the note reads the CR as the template does), so a note is still rendered per
    /// scalar and typed, and calls no code of its own.
    notes: std::collections::BTreeMap<String, Expr>,
}

/// How deep notes may call notes.
pub const MAX_NOTE_DEPTH: usize = 16;
/// The most expression nodes one template may have once its notes are expanded (notes calling
/// notes several times over would otherwise grow exponentially).
pub const MAX_EXPANDED_NODES: usize = 10_000;

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TemplateSet({} templates)", self.next)
    }
}

impl Default for TemplateSet {
    fn default() -> Self {
        Self::new()
    }
}

/// The data a CR's templates render against, converted once per render.
pub struct Scope(Context);

impl Scope {
    /// `root` is the CR (plus whatever else the caller exposes, e.g. `children`).
    pub fn new(root: &Value) -> Self {
        Scope(Context::from(root.clone()))
    }

    /// The data templates render against.
    pub fn data(&self) -> &Value {
        self.0.data()
    }
}

impl TemplateSet {
    pub fn new() -> Self {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(false);
        hb.register_escape_fn(handlebars::no_escape);
        for f in functions::FUNCTIONS {
            hb.register_helper(f.name, Box::new(FuncHelper(f)));
        }
        hb.register_helper(JSON_HELPER, Box::new(OutHelper { json: true }));
        hb.register_helper(TEXT_HELPER, Box::new(OutHelper { json: false }));
        hb.register_helper(PATH_HELPER, Box::new(PathHelper));
        Self {
            hb,
            next: 0,
            notes: Default::default(),
        }
    }

    /// Register a user-defined note: `{{ NAME }}` in any template then stands for `src` (a
    /// template of its own, text and expressions; a text result is trimmed, as upstream's is).
    /// Notes may call each other in any order; a call is checked when a template uses it and by
    /// [`TemplateSet::check_note`].
    pub fn add_note(&mut self, name: &str, src: &str) -> Result<(), CompileError> {
        let mut parts = if src.contains("{{") {
            parse::parse(src).map_err(|e| CompileError {
                offset: e.offset,
                code: "template-syntax",
                message: e.message,
            })?
        } else {
            vec![Part::Text(src.to_string())]
        };
        parts.iter_mut().for_each(|p| {
            if let Part::Expr(e) = p {
                default_in_either_order(e);
            }
        });
        let expr = match parts.as_slice() {
            [Part::Expr(e)] => e.clone(),
            _ => Expr::Call {
                name: "trimSpace".into(),
                args: vec![parse::concat(parts, 0)],
                offset: 0,
            },
        };
        self.notes.insert(name.to_string(), expr);
        Ok(())
    }

    /// Whether `name` is a user-defined note.
    pub fn is_note(&self, name: &str) -> bool {
        self.notes.contains_key(name)
    }

    /// Check a registered note as if a template called it: every function it calls (notes
    /// included) exists with its arity, and it does not call itself.
    pub fn check_note(&self, name: &str) -> Result<(), CompileError> {
        let mut e = Expr::Call {
            name: name.to_string(),
            args: Vec::new(),
            offset: 0,
        };
        self.expand_notes(&mut e)?;
        check(&e)
    }

    /// Replace every call of a note in `e` by the note's expression.
    fn expand_notes(&self, e: &mut Expr) -> Result<(), CompileError> {
        if self.notes.is_empty() {
            return Ok(());
        }
        let mut nodes = 0;
        expand(e, &self.notes, &mut Vec::new(), &mut nodes)
    }

    /// Compile one scalar.
    pub fn compile(&mut self, src: &str) -> Result<Template, CompileError> {
        if !src.contains("{{") && !src.contains("}}") {
            return Ok(Template::Literal(Value::String(src.to_string())));
        }
        let mut parts = parse::parse(src).map_err(|e| CompileError {
            offset: e.offset,
            code: "template-syntax",
            message: e.message,
        })?;
        parts.iter_mut().for_each(|p| {
            if let Part::Expr(e) = p {
                default_in_either_order(e);
            }
        });
        for p in &mut parts {
            if let Part::Expr(e) = p {
                self.expand_notes(e)?;
            }
        }
        let mut hbs = String::new();
        for p in &parts {
            if let Part::Expr(e) = p {
                check(e)?;
            }
        }
        let key = format!("t{}", self.next);
        self.next += 1;
        let single = match parts.as_slice() {
            [Part::Expr(e)] => Some(e.clone()),
            _ => None,
        };
        if let Some(e) = &single {
            hbs.push_str(&format!("{{{{{{{JSON_HELPER} {}}}}}}}", to_hbs(e)));
        } else {
            for p in &parts {
                match p {
                    Part::Text(t) => hbs.push_str(&escape_text(t)),
                    Part::Expr(e) => {
                        hbs.push_str(&format!("{{{{{{{TEXT_HELPER} {}}}}}}}", to_hbs(e)))
                    }
                }
            }
        }
        self.hb
            .register_template_string(&key, &hbs)
            .map_err(|e| CompileError {
                offset: 0,
                code: "template-syntax",
                message: format!("cannot compile template: {e}"),
            })?;
        Ok(match single {
            Some(expr) => Template::Single { key, expr },
            None => Template::Mixed { key, parts },
        })
    }

    /// Render one compiled scalar against a scope. Errors are function errors (`required`,
    /// `b64dec` of bad input, …) as a message.
    pub fn render(&self, t: &Template, scope: &Scope) -> Result<Value, String> {
        self.render_unbounded(t, scope).and_then(functions::bounded)
    }

    fn render_unbounded(&self, t: &Template, scope: &Scope) -> Result<Value, String> {
        // Fast path: plain field paths (most Katalog values) are looked up directly, with the
        // same semantics handlebars gives them; anything with a function goes to handlebars.
        match t {
            Template::Single {
                expr: Expr::Path(p),
                ..
            } => return Ok(lookup(scope.0.data(), p).clone()),
            Template::Mixed { parts, .. }
                if parts
                    .iter()
                    .all(|p| matches!(p, Part::Text(_) | Part::Expr(Expr::Path(_)))) =>
            {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => out.push_str(t),
                        Part::Expr(Expr::Path(p)) => {
                            out.push_str(&functions::to_text(lookup(scope.0.data(), p)))
                        }
                        Part::Expr(_) => unreachable!("checked above"),
                    }
                }
                return Ok(Value::String(out));
            }
            _ => {}
        }
        self.render_with_handlebars(t, scope)
    }

    /// Render through handlebars only (no fast path); tests check both paths agree.
    #[doc(hidden)]
    pub fn render_with_handlebars(&self, t: &Template, scope: &Scope) -> Result<Value, String> {
        match t {
            Template::Literal(v) => Ok(v.clone()),
            Template::Single { key, .. } => {
                let out = self
                    .hb
                    .render_with_context(key, &scope.0)
                    .map_err(render_msg)?;
                Ok(serde_json::from_str(&out).unwrap_or(Value::String(out)))
            }
            Template::Mixed { key, .. } => self
                .hb
                .render_with_context(key, &scope.0)
                .map(Value::String)
                .map_err(render_msg),
        }
    }
}

/// A field path in a JSON value; a missing step yields null (upstream: renders empty).
fn lookup<'a>(root: &'a Value, path: &[String]) -> &'a Value {
    static NULL: Value = Value::Null;
    let mut cur = root;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg).unwrap_or(&NULL),
            Value::Array(a) => seg
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .unwrap_or(&NULL),
            _ => &NULL,
        };
    }
    cur
}

fn render_msg(e: RenderError) -> String {
    match e.reason() {
        RenderErrorReason::Other(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Upstream Orkestra writes some functions value first (`default .spec.replicas 1`,
/// `hasPrefix .spec.image "myorg/"`) where sprig writes the literal first (`default 1
/// .spec.replicas`): the argument that is a path to a value is the value, so a path first and a
/// literal second are swapped into sprig's order ([`functions::VALUE_FIRST_UPSTREAM`]).
fn default_in_either_order(e: &mut Expr) {
    if let Expr::Call { name, args, .. } = e {
        args.iter_mut().for_each(default_in_either_order);
        let literal = |a: &Expr| matches!(a, Expr::Str(_) | Expr::Num(_) | Expr::Bool(_));
        if functions::VALUE_FIRST_UPSTREAM.contains(&name.as_str())
            && args.len() == 2
            && matches!(args[0], Expr::Path(_))
            && literal(&args[1])
        {
            args.swap(0, 1);
        }
    }
}

/// [`TemplateSet::expand_notes`] with the notes being expanded (`chain`, for cycles) and the
/// nodes made so far (bounded by [`MAX_EXPANDED_NODES`]).
fn expand(
    e: &mut Expr,
    notes: &std::collections::BTreeMap<String, Expr>,
    chain: &mut Vec<String>,
    nodes: &mut usize,
) -> Result<(), CompileError> {
    *nodes += 1;
    let Expr::Call { name, args, offset } = e else {
        return Ok(());
    };
    let at = *offset;
    if *nodes > MAX_EXPANDED_NODES {
        return Err(CompileError {
            offset: at,
            code: "invalid-value",
            message: format!("the notes this template calls expand to more than {MAX_EXPANDED_NODES} expressions"),
        });
    }
    for a in args.iter_mut() {
        expand(a, notes, chain, nodes)?;
    }
    let Some(body) = notes.get(name.as_str()) else {
        return Ok(());
    };
    if !args.is_empty() {
        return Err(CompileError {
            offset: at,
            code: "wrong-arity",
            message: format!(
                "`{name}` is a note of this Katalog and takes no arguments (a note reads the CR itself), but was given {}",
                args.len()
            ),
        });
    }
    if chain.iter().any(|c| c == name) || chain.len() >= MAX_NOTE_DEPTH {
        chain.push(name.clone());
        return Err(CompileError {
            offset: at,
            code: "invalid-value",
            message: if chain.len() > MAX_NOTE_DEPTH {
                format!(
                    "notes call notes more than {MAX_NOTE_DEPTH} deep ({})",
                    chain.join(" → ")
                )
            } else {
                format!("note `{name}` calls itself ({})", chain.join(" → "))
            },
        });
    }
    chain.push(name.clone());
    let mut body = body.clone();
    at_offset(&mut body, at);
    expand(&mut body, notes, chain, nodes)?;
    chain.pop();
    *e = body;
    Ok(())
}

/// Every call in `e` reported at `offset` (a note's expression, where the template calls it).
fn at_offset(e: &mut Expr, at: usize) {
    if let Expr::Call { args, offset, .. } = e {
        *offset = at;
        args.iter_mut().for_each(|a| at_offset(a, at));
    }
}

/// Check every call against the function table.
fn check(e: &Expr) -> Result<(), CompileError> {
    if let Expr::Call { name, args, offset } = e {
        if matches!(
            name.as_str(),
            "randomAlphanumeric" | "randomHex" | "randomBase64" | "uuidv4"
        ) {
            return Err(CompileError {
                offset: *offset,
                code: "not-supported",
                message: format!(
                    "`{name}` (upstream Orkestra's random note) would change on every render; make the value once with `generate:` on a Secret (`generate: {{password: {{length: 32}}}}`, from the operating system's randomness)"
                ),
            });
        }
        if functions::UPSTREAM_NOT_SUPPORTED.contains(&name.as_str()) {
            return Err(CompileError {
                offset: *offset,
                code: "not-supported",
                message: format!(
                    "`{name}` is one of upstream Orkestra's notes that orkestra does not support yet (most read pods or events through upstream's enrich); if a Motif of yours defines it, define it under the Katalog's `notes:`"
                ),
            });
        }
        let Some(f) = functions::lookup(name) else {
            let names = functions::FUNCTIONS.iter().map(|f| f.name);
            return Err(CompileError {
                offset: *offset,
                code: "unknown-function",
                message: format!(
                    "unknown function `{name}`{}",
                    crate::diagnostic::did_you_mean(name, names)
                ),
            });
        };
        let n = args.len();
        if n < f.min_args || f.max_args.is_some_and(|m| n > m) {
            return Err(CompileError {
                offset: *offset,
                code: "wrong-arity",
                message: format!(
                    "`{name}` takes {} but was given {n} (usage: {})",
                    arity(f),
                    f.usage
                ),
            });
        }
        args.iter().try_for_each(check)?;
    }
    Ok(())
}

fn arity(f: &functions::Func) -> String {
    match f.max_args {
        Some(m) if m == f.min_args => format!("{m} argument(s)"),
        Some(m) => format!("{} to {m} arguments", f.min_args),
        None => format!("at least {} argument(s)", f.min_args),
    }
}

const JSON_HELPER: &str = "__orkestra_json";
const TEXT_HELPER: &str = "__orkestra_text";
const PATH_HELPER: &str = "__orkestra_path";

/// Handlebars treats `\{{` as an escaped expression; text never contains `{{` here (it was parsed
/// out), but a trailing backslash right before an expression would escape it, so double that one.
fn escape_text(t: &str) -> String {
    if t.ends_with('\\') {
        format!("{t}\\")
    } else {
        t.to_string()
    }
}

fn to_hbs(e: &Expr) -> String {
    match e {
        Expr::Path(segs) => {
            // Paths go through our own helper so that they mean the same thing everywhere
            // (a missing step, or a field of a list, is null) and a field named like a helper
            // stays a field.
            let mut s = format!("({PATH_HELPER}");
            for seg in segs {
                s.push(' ');
                s.push_str(&Value::String(seg.clone()).to_string());
            }
            s.push(')');
            s
        }
        Expr::Str(v) => Value::String(v.clone()).to_string(),
        Expr::Num(n) => n.to_string(),
        Expr::Bool(b) => b.to_string(),
        Expr::Nil => "null".into(),
        Expr::Call { name, args, .. } => {
            let mut s = String::from("(");
            s.push_str(name);
            for a in args {
                s.push(' ');
                s.push_str(&to_hbs(a));
            }
            s.push(')');
            s
        }
    }
}

/// Adapts a [`functions::Func`] to a handlebars helper usable in subexpressions.
struct FuncHelper(&'static functions::Func);

impl HelperDef for FuncHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args: Vec<Value> = h.params().iter().map(|p| p.value().clone()).collect();
        (self.0.call)(&args)
            .and_then(functions::bounded)
            .map(ScopedJson::Derived)
            .map_err(|m| RenderErrorReason::Other(m).into())
    }
}

/// Looks a field path up from the root of the scope.
struct PathHelper;

impl HelperDef for PathHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let segs: Vec<String> = h
            .params()
            .iter()
            .map(|p| p.value().as_str().unwrap_or_default().to_string())
            .collect();
        Ok(ScopedJson::Derived(lookup(ctx.data(), &segs).clone()))
    }
}

/// Writes a value either as JSON (single expressions keep their type) or as text.
struct OutHelper {
    json: bool,
}

impl HelperDef for OutHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let v = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
        let out = if self.json {
            v.to_string()
        } else {
            functions::to_text(&v)
        };
        Ok(ScopedJson::Derived(Value::String(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(src: &str, cr: &Value) -> Result<Value, String> {
        let mut set = TemplateSet::new();
        let t = set.compile(src).map_err(|e| e.message)?;
        set.render(&t, &Scope::new(cr))
    }

    fn cr() -> Value {
        json!({
            "metadata": {"name": "shop", "namespace": "prod", "labels": {"app-tier": "web"}},
            "spec": {"image": "nginx:1.27", "replicas": 3, "tier": "", "config": {"a": 1},
                     "hostile": "nginx\n  hostNetwork: true", "list": ["a", "b"], "default": "d",
                     "quoted": "say \"hi\""}
        })
    }

    #[test]
    fn if_else_with_and_variables_render_as_upstream_writes_them() {
        let cr = json!({"metadata": {"name": "shop"},
            "spec": {"tier": "web", "db": {"host": "pg", "port": 5432}, "debug": false}});
        let cases = [
            (
                "{{ if eq .spec.tier \"web\" }}public{{ else }}internal{{ end }}",
                "public",
            ),
            (
                "{{ if .spec.debug }}debug{{ else if .spec.tier }}tier {{ .spec.tier }}{{ end }}",
                "tier web",
            ),
            ("{{ if .spec.debug }}x{{ end }}", ""),
            (
                "{{ with .spec.db }}{{ .host }}:{{ .port }}{{ end }}",
                "pg:5432",
            ),
            (
                "{{ with .spec.none }}{{ .host }}{{ else }}no db{{ end }}",
                "no db",
            ),
            (
                "{{ with .spec.db }}{{ $.metadata.name }}@{{ .host }}{{ end }}",
                "shop@pg",
            ),
            (
                "{{ $n := .metadata.name }}{{ $db := .spec.db }}{{ $n }}-{{ $db.host }}",
                "shop-pg",
            ),
            (
                "{{- if .spec.tier -}}\n  {{ .spec.tier }}\n{{- end }}",
                "web",
            ),
            ("{{ with (get .spec \"db\") }}{{ .port }}{{ end }}", "5432"),
        ];
        for (src, want) in cases {
            assert_eq!(render(src, &cr).unwrap(), json!(want), "{src}");
        }
        // The value of a CR cannot add structure here either.
        let hostile = json!({"spec": {"tier": "x\n  hostNetwork: true"}});
        assert_eq!(
            render("{{ if .spec.tier }}{{ .spec.tier }}{{ end }}", &hostile).unwrap(),
            json!("x\n  hostNetwork: true")
        );
    }

    #[test]
    fn broken_actions_are_errors_with_offsets() {
        let mut set = TemplateSet::new();
        for (src, fragment) in [
            ("{{ if .a }}x", "without its `end`"),
            ("x{{ end }}", "without an `if`"),
            ("{{ $y }}", "undefined variable `$y`"),
            (
                "{{ range .a }}x{{ end }}",
                "`range` actions are not supported",
            ),
            ("{{ with .a }}x{{ else if .b }}y{{ end }}", "not supported"),
        ] {
            let e = set.compile(src).unwrap_err();
            assert!(e.message.contains(fragment), "{src}: {}", e.message);
        }
        let deep = "{{ if .a }}".repeat(20) + &"{{ end }}".repeat(20);
        assert!(set
            .compile(&deep)
            .unwrap_err()
            .message
            .contains("nest deeper"));
    }

    #[test]
    fn default_takes_either_order() {
        let cr = json!({"spec": {"replicas": 3, "none": null}});
        for src in [
            "{{ default 1 .spec.replicas }}",
            "{{ default .spec.replicas 1 }}",
            "{{ .spec.replicas | default 1 }}",
        ] {
            assert_eq!(render(src, &cr).unwrap(), json!(3), "{src}");
        }
        for src in ["{{ default 1 .spec.none }}", "{{ default .spec.none 1 }}"] {
            assert_eq!(render(src, &cr).unwrap(), json!(1), "{src}");
        }
        // Two paths keep sprig's order: the last one is the value.
        let cr = json!({"spec": {"a": "x", "b": ""}});
        assert_eq!(
            render("{{ default .spec.a .spec.b }}", &cr).unwrap(),
            json!("x")
        );
        assert_eq!(
            render("{{ default .spec.b .spec.a }}", &cr).unwrap(),
            json!("x")
        );
    }

    #[test]
    fn rendered_text_is_bounded_on_both_paths() {
        // Nested `cat`s double a CR-sized value at each level: the limit stops it at the call
        // that crosses 1 MiB, and a plain text template of many paths stops at the end.
        let cr = json!({"spec": {"x": "a".repeat(300 * 1024)}});
        let e = render("{{ cat (cat .spec.x .spec.x) (cat .spec.x .spec.x) }}", &cr).unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        let e = render("{{.spec.x}}{{.spec.x}}{{.spec.x}}{{.spec.x}}", &cr).unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        assert!(render("{{.spec.x}}{{.spec.x}}{{.spec.x}}", &cr).is_ok());
    }

    #[test]
    fn single_expression_keeps_type() {
        assert_eq!(render("{{ .spec.replicas }}", &cr()).unwrap(), json!(3));
        assert_eq!(
            render("{{ .spec.config }}", &cr()).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            render("{{ .spec.list }}", &cr()).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(render("{{ .spec.missing }}", &cr()).unwrap(), Value::Null);
    }

    #[test]
    fn mixed_text_is_a_string() {
        assert_eq!(
            render(
                "{{ .metadata.name }}-{{ .metadata.namespace }}-assets",
                &cr()
            )
            .unwrap(),
            json!("shop-prod-assets")
        );
        assert_eq!(render("r{{ .spec.replicas }}", &cr()).unwrap(), json!("r3"));
        assert_eq!(render("x-{{ .spec.missing }}", &cr()).unwrap(), json!("x-"));
        assert_eq!(
            render("a\\b {{ .metadata.name }}", &cr()).unwrap(),
            json!("a\\b shop")
        );
        assert_eq!(
            render("a\\{{ .metadata.name }}", &cr()).unwrap(),
            json!("a\\shop")
        );
    }

    #[test]
    fn functions_and_pipes() {
        assert_eq!(
            render(r#"{{ .spec.tier | default "small" }}"#, &cr()).unwrap(),
            json!("small")
        );
        assert_eq!(
            render(r#"{{ default "small" .spec.tier }}"#, &cr()).unwrap(),
            json!("small")
        );
        assert_eq!(
            render("{{ .metadata.name | upper }}", &cr()).unwrap(),
            json!("SHOP")
        );
        assert_eq!(
            render("{{ trunc 2 .metadata.name }}", &cr()).unwrap(),
            json!("sh")
        );
        assert_eq!(
            render(r#"{{ index .metadata.labels "app-tier" }}"#, &cr()).unwrap(),
            json!("web")
        );
        assert_eq!(
            render("{{ .metadata.labels.app-tier }}", &cr()).unwrap(),
            json!("web")
        );
        assert_eq!(render("{{ .spec.default }}", &cr()).unwrap(), json!("d"));
        assert_eq!(
            render(r#"{{ .spec.quoted | replace "\"" "'" }}"#, &cr()).unwrap(),
            json!("say 'hi'")
        );
        assert_eq!(render(r#"{{ "a\"b" }}"#, &cr()).unwrap(), json!("a\"b"));
        assert_eq!(
            render("{{ .spec.replicas | int }}", &cr()).unwrap(),
            json!(3)
        );
        assert_eq!(
            render("{{ $.metadata.name }}", &cr()).unwrap(),
            json!("shop")
        );
    }

    #[test]
    fn values_cannot_add_structure() {
        // The hostile value stays one string, newline and all.
        assert_eq!(
            render("{{ .spec.hostile }}", &cr()).unwrap(),
            json!("nginx\n  hostNetwork: true")
        );
    }

    #[test]
    fn compile_errors() {
        let mut set = TemplateSet::new();
        let e = set.compile("{{ .x | uper }}").unwrap_err();
        assert_eq!(e.code, "unknown-function");
        assert!(e.message.contains("did you mean `upper`"), "{}", e.message);
        assert_eq!(e.offset, 8);
        assert_eq!(
            set.compile("{{ trunc .x }}").unwrap_err().code,
            "wrong-arity"
        );
        assert_eq!(set.compile("{{ .x").unwrap_err().code, "template-syntax");
        let e = set
            .compile("{{ hasCrashingPod .children.deployment }}")
            .unwrap_err();
        assert_eq!(e.code, "not-supported");
        // Go's field of a parenthesized value.
        let t = set.compile("{{ (index .a \"b\").c.d }}").unwrap();
        let cr = json!({"a": {"b": {"c": {"d": 7}}}});
        assert_eq!(set.render(&t, &Scope::new(&cr)).unwrap(), json!(7));
        let e = set.compile("{{ randomAlphanumeric 32 }}").unwrap_err();
        assert_eq!(e.code, "not-supported");
        assert!(e.message.contains("generate:"), "{}", e.message);
    }

    #[test]
    fn function_errors_surface() {
        assert_eq!(
            render(
                r#"{{ required "spec.tier is required" .spec.tier }}"#,
                &cr()
            )
            .unwrap_err(),
            "spec.tier is required"
        );
    }
}
