//! A parser for the Go-template surface Katalogs are written in.
//!
//! Expressions (`{{ .spec.x }}`, pipes, function calls, parentheses, string/number/bool
//! literals, `{{-`/`-}}` trimming), and the actions upstream Orkestra's Katalogs use: `if` /
//! `else if` / `else` / `end`, `with` (its `.` is the value), and variables (`{{ $x := ... }}`,
//! `$x.field`, `$.root`). Actions are lowered to expressions of pure functions — an `if` block
//! becomes `ternary COND (concat THEN...) (concat ELSE...)` — so a template is still one list of
//! text and expressions, rendered per scalar. `range` and the rest are refused by name.

use serde_json::Number;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `.a.b` (root = false) or `$.a.b` (root = true); an empty path is the dot itself.
    Path(Vec<String>),
    Str(String),
    Num(Number),
    Bool(bool),
    Nil,
    /// A function applied to arguments; a pipe's left side is the last argument.
    Call {
        name: String,
        args: Vec<Expr>,
        offset: usize,
    },
}

impl Expr {
    /// Every CR path the expression reads, for schema checks.
    pub fn paths<'a>(&'a self, out: &mut Vec<&'a [String]>) {
        match self {
            Expr::Path(p) => out.push(p),
            Expr::Call { args, .. } => args.iter().for_each(|a| a.paths(out)),
            _ => {}
        }
    }
}

/// A piece of a templated scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Expr(Expr),
}

/// A template error with the byte offset in the scalar where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        offset,
        message: message.into(),
    })
}

/// Split a scalar into text and expressions.
pub fn parse(src: &str) -> Result<Vec<Part>, ParseError> {
    let mut pieces: Vec<(Piece, usize)> = Vec::new();
    let mut rest = 0;
    let mut trim_next_text = false;
    while let Some(open) = src[rest..].find("{{") {
        let open = rest + open;
        let mut text = &src[rest..open];
        if trim_next_text {
            text = text.trim_start();
        }
        let mut inner_start = open + 2;
        let trim_left =
            src[inner_start..].starts_with("- ") || src[inner_start..].starts_with("-\t");
        if trim_left {
            text = text.trim_end();
            inner_start += 1;
        }
        if !text.is_empty() {
            pieces.push((Piece::Part(Part::Text(text.to_string())), rest));
        }
        let Some(close) = src[inner_start..].find("}}") else {
            return err(open, "unclosed `{{`: add the matching `}}`");
        };
        let mut inner_end = inner_start + close;
        trim_next_text = false;
        if src[..inner_end].ends_with(" -") || src[..inner_end].ends_with("\t-") {
            inner_end -= 1;
            trim_next_text = true;
        }
        let inner = &src[inner_start..inner_end];
        pieces.push((parse_piece(inner, inner_start)?, open));
        rest = inner_start + close + 2;
    }
    let mut text = &src[rest..];
    if trim_next_text {
        text = text.trim_start();
    }
    if let Some(i) = text.find("}}") {
        return err(rest + i, "`}}` without a matching `{{`");
    }
    if !text.is_empty() {
        pieces.push((Piece::Part(Part::Text(text.to_string())), rest));
    }
    lower(pieces)
}

/// What one `{{ }}` (or a run of text) is, before actions are lowered.
#[derive(Debug, Clone)]
enum Piece {
    Part(Part),
    If(Expr),
    ElseIf(Expr),
    Else,
    End,
    With(Expr),
    /// `$name := expr`.
    Define(String, Expr),
}

/// Lower actions to expressions: blocks to `ternary`/`concat`, `with` and variables substituted.
fn lower(pieces: Vec<(Piece, usize)>) -> Result<Vec<Part>, ParseError> {
    let mut it = pieces.into_iter().peekable();
    let mut vars: Vec<(String, Expr)> = Vec::new();
    let (parts, stop) = block(&mut it, &mut vars, None, 0)?;
    if let Some((_, at)) = stop {
        return err(at, "`else` or `end` without an `if` or `with`");
    }
    Ok(parts)
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<(Piece, usize)>>;

/// A block's parts and the piece that closed it (with its offset), if any.
type Block = (Vec<Part>, Option<(Piece, usize)>);

/// How deeply blocks may nest (a bound, so no template makes lowering unbounded).
const MAX_DEPTH: usize = 16;

/// Parts up to the `else`/`else if`/`end` that closes the current block (returned with its
/// offset), or to the end of the template (`None`).
fn block(
    it: &mut Pieces,
    vars: &mut Vec<(String, Expr)>,
    dot: Option<&Expr>,
    depth: usize,
) -> Result<Block, ParseError> {
    let mut out = Vec::new();
    while let Some((piece, at)) = it.next() {
        match piece {
            Piece::Part(Part::Text(t)) => out.push(Part::Text(t)),
            Piece::Part(Part::Expr(e)) => out.push(Part::Expr(resolve(e, dot, vars, at)?)),
            Piece::Define(name, e) => {
                let e = resolve(e, dot, vars, at)?;
                vars.push((name, e));
            }
            Piece::If(cond) => {
                if depth >= MAX_DEPTH {
                    return err(at, format!("blocks nest deeper than {MAX_DEPTH}"));
                }
                let cond = resolve(cond, dot, vars, at)?;
                out.push(Part::Expr(if_chain(it, vars, dot, depth, cond, at)?));
            }
            Piece::With(value) => {
                if depth >= MAX_DEPTH {
                    return err(at, format!("blocks nest deeper than {MAX_DEPTH}"));
                }
                let value = resolve(value, dot, vars, at)?;
                let scope = vars.len();
                let (body, stop) = block(it, vars, Some(&value), depth + 1)?;
                vars.truncate(scope);
                let otherwise = match stop {
                    Some((Piece::End, _)) => Vec::new(),
                    Some((Piece::Else, _)) => else_branch(it, vars, dot, depth, scope, at)?,
                    Some((_, a)) => return err(a, "`else if` inside `with` is not supported"),
                    None => return err(at, "`with` without its `end`"),
                };
                out.push(Part::Expr(ternary(value, body, otherwise, at)));
            }
            stop @ (Piece::Else | Piece::ElseIf(_) | Piece::End) => {
                return Ok((out, Some((stop, at))));
            }
        }
    }
    Ok((out, None))
}

/// `if COND` … up to its `end`, `else if`s included, as nested ternaries.
fn if_chain(
    it: &mut Pieces,
    vars: &mut Vec<(String, Expr)>,
    dot: Option<&Expr>,
    depth: usize,
    cond: Expr,
    at: usize,
) -> Result<Expr, ParseError> {
    let scope = vars.len();
    let (then, stop) = block(it, vars, dot, depth + 1)?;
    vars.truncate(scope);
    let otherwise = match stop {
        Some((Piece::End, _)) => Vec::new(),
        Some((Piece::Else, _)) => else_branch(it, vars, dot, depth, scope, at)?,
        Some((Piece::ElseIf(c), a)) => {
            let c = resolve(c, dot, vars, a)?;
            vec![Part::Expr(if_chain(it, vars, dot, depth + 1, c, a)?)]
        }
        _ => return err(at, "`if` without its `end`"),
    };
    Ok(ternary(cond, then, otherwise, at))
}

/// The parts after an `else`, up to the block's `end`; variables defined there go with it.
fn else_branch(
    it: &mut Pieces,
    vars: &mut Vec<(String, Expr)>,
    dot: Option<&Expr>,
    depth: usize,
    scope: usize,
    at: usize,
) -> Result<Vec<Part>, ParseError> {
    let (b, stop) = block(it, vars, dot, depth + 1)?;
    vars.truncate(scope);
    expect_end(stop, at)?;
    Ok(b)
}

fn expect_end(stop: Option<(Piece, usize)>, at: usize) -> Result<(), ParseError> {
    match stop {
        Some((Piece::End, _)) => Ok(()),
        Some((_, a)) => err(a, "expected `end`"),
        None => err(at, "block without its `end`"),
    }
}

/// `concat "" PARTS…`: text and expressions as one expression yielding their text.
pub fn concat(parts: Vec<Part>, at: usize) -> Expr {
    Expr::Call {
        name: "concat".into(),
        args: std::iter::once(Expr::Str(String::new()))
            .chain(parts.into_iter().map(|p| match p {
                Part::Text(t) => Expr::Str(t),
                Part::Expr(e) => e,
            }))
            .collect(),
        offset: at,
    }
}

/// `ternary COND (concat A…) (concat B…)`.
fn ternary(cond: Expr, then: Vec<Part>, otherwise: Vec<Part>, at: usize) -> Expr {
    Expr::Call {
        name: "ternary".into(),
        args: vec![cond, concat(then, at), concat(otherwise, at)],
        offset: at,
    }
}

/// `e` with variables replaced by what they were bound to, `$.x` made a root path and, inside
/// `with`, `.x` read from the `with`'s value.
fn resolve(
    e: Expr,
    dot: Option<&Expr>,
    vars: &[(String, Expr)],
    at: usize,
) -> Result<Expr, ParseError> {
    Ok(match e {
        Expr::Path(mut segs) => match segs.first().map(String::as_str) {
            Some("$") => {
                segs.remove(0);
                Expr::Path(segs)
            }
            Some(v) if v.starts_with('$') => {
                let Some((_, bound)) = vars.iter().rev().find(|(n, _)| n == v) else {
                    return err(at, format!("undefined variable `{v}`"));
                };
                segs.remove(0);
                within(bound.clone(), segs, at)
            }
            _ => match dot {
                Some(d) => within(d.clone(), segs, at),
                None => Expr::Path(segs),
            },
        },
        Expr::Call { name, args, offset } => Expr::Call {
            name,
            args: args
                .into_iter()
                .map(|a| resolve(a, dot, vars, at))
                .collect::<Result<_, _>>()?,
            offset,
        },
        other => other,
    })
}

/// The field `segs` of the value `base` is.
fn within(base: Expr, segs: Vec<String>, at: usize) -> Expr {
    if segs.is_empty() {
        return base;
    }
    match base {
        Expr::Path(mut b) => {
            b.extend(segs);
            Expr::Path(b)
        }
        other => Expr::Call {
            name: "get".into(),
            args: std::iter::once(other)
                .chain(segs.into_iter().map(Expr::Str))
                .collect(),
            offset: at,
        },
    }
}

/// One `{{ }}`: an action keyword, a variable definition, or an expression.
fn parse_piece(inner: &str, base: usize) -> Result<Piece, ParseError> {
    let t = inner.trim();
    let lead = inner.len() - inner.trim_start().len();
    let word = t.split_whitespace().next().unwrap_or_default();
    let after = |w: &str| {
        let i = inner.find(w).unwrap_or(lead) + w.len();
        (&inner[i..], base + i)
    };
    Ok(match word {
        "if" => {
            let (rest, b) = after("if");
            Piece::If(parse_action(rest, b)?)
        }
        "else" => {
            let (rest, b) = after("else");
            let r = rest.trim_start();
            if let Some(cond) = r.strip_prefix("if ").or_else(|| r.strip_prefix("if\t")) {
                let b = b + (rest.len() - cond.len());
                Piece::ElseIf(parse_action(cond, b)?)
            } else if r.is_empty() {
                Piece::Else
            } else {
                return err(b, "`else` takes nothing but `if COND`");
            }
        }
        "end" if t == "end" => Piece::End,
        "with" => {
            let (rest, b) = after("with");
            Piece::With(parse_action(rest, b)?)
        }
        w if w.starts_with('$') && t.contains(":=") => {
            let eq = inner.find(":=").expect("checked");
            let name = inner[..eq].trim();
            let ok = name.len() > 1
                && name[1..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return err(
                    base + lead,
                    format!("`{name}` is not a variable name like `$name`"),
                );
            }
            Piece::Define(
                name.to_string(),
                parse_action(&inner[eq + 2..], base + eq + 2)?,
            )
        }
        _ => Piece::Part(Part::Expr(parse_action(inner, base)?)),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Ident(String),
    Str(String),
    Num(Number),
    Pipe,
    Open,
    Close,
}

fn lex(src: &str, base: usize) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let seg_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    while i < b.len() {
        let c = b[i];
        let at = base + i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                out.push((Tok::Pipe, at));
                i += 1;
            }
            b'(' => {
                out.push((Tok::Open, at));
                i += 1;
            }
            b')' => {
                out.push((Tok::Close, at));
                i += 1;
            }
            b'.' | b'$' => {
                let mut segs = Vec::new();
                if c == b'$' {
                    // `$` (the root) or `$name` (a variable): its first step, resolved when
                    // actions are lowered.
                    let s = i;
                    i += 1;
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                        i += 1;
                    }
                    segs.push(src[s..i].to_string());
                }
                while i < b.len() && b[i] == b'.' {
                    i += 1;
                    let s = i;
                    while i < b.len() && seg_char(b[i]) {
                        i += 1;
                    }
                    if s == i {
                        if segs.is_empty() && (i >= b.len() || !seg_char(b[i])) {
                            break; // the bare dot
                        }
                        return err(base + s, "expected a field name after `.`");
                    }
                    segs.push(src[s..i].to_string());
                }
                out.push((Tok::Field(segs), at));
            }
            b'"' | b'`' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                loop {
                    if i >= b.len() {
                        return err(at, "unterminated string literal");
                    }
                    let ch = src[i..].chars().next().expect("in bounds");
                    if b[i] == quote {
                        i += 1;
                        break;
                    }
                    if quote == b'"' && ch == '\\' && i + 1 < b.len() {
                        let n = b[i + 1];
                        s.push(match n {
                            b'n' => '\n',
                            b't' => '\t',
                            b'"' => '"',
                            b'\\' => '\\',
                            _ => return err(base + i, "unknown escape in string literal"),
                        });
                        i += 2;
                        continue;
                    }
                    s.push(ch);
                    i += ch.len_utf8();
                }
                out.push((Tok::Str(s), at));
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let s = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e') {
                    i += 1;
                }
                let text = &src[s..i];
                let n: Number = if let Ok(n) = text.parse::<i64>() {
                    n.into()
                } else if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
                    n
                } else {
                    return err(at, format!("`{text}` is not a number"));
                };
                out.push((Tok::Num(n), at));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((Tok::Ident(src[s..i].to_string()), at));
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(at, format!("unexpected `{ch}` in template"));
            }
        }
    }
    Ok(out)
}

/// Actions the surface does not have (`if`/`else`/`end`/`with` are lowered before this).
const ACTIONS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

fn parse_action(src: &str, base: usize) -> Result<Expr, ParseError> {
    let trimmed = src.trim_start();
    if trimmed.starts_with("/*") {
        return err(
            base,
            "template comments are not supported in a Katalog value",
        );
    }
    let toks = lex(src, base)?;
    if toks.is_empty() {
        return err(base, "empty `{{ }}`");
    }
    if let (Tok::Ident(name), at) = &toks[0] {
        if ACTIONS.contains(&name.as_str()) {
            return err(*at, format!("`{name}` actions are not supported (orkestra has if/else/with and variables); use `when`/`or` on the entry"));
        }
    }
    let mut p = TokParser {
        toks,
        i: 0,
        end: base + src.len(),
    };
    let e = p.pipeline()?;
    if let Some((_, at)) = p.toks.get(p.i) {
        return err(*at, "unexpected token; expected `}}` or `|`");
    }
    Ok(e)
}

struct TokParser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    end: usize,
}

impl TokParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }
    fn at(&self) -> usize {
        self.toks.get(self.i).map(|t| t.1).unwrap_or(self.end)
    }

    fn pipeline(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.command(None)?;
        while self.peek() == Some(&Tok::Pipe) {
            self.i += 1;
            let at = self.at();
            match self.command(Some(e))? {
                c @ Expr::Call { .. } => e = c,
                _ => return err(at, "after `|` there must be a function name"),
            }
        }
        Ok(e)
    }

    /// A command: a function with arguments, or a single operand. `piped` is a pipe's left side.
    fn command(&mut self, piped: Option<Expr>) -> Result<Expr, ParseError> {
        let at = self.at();
        match self.peek() {
            Some(Tok::Ident(name)) if !matches!(name.as_str(), "true" | "false" | "nil") => {
                let name = name.clone();
                self.i += 1;
                let mut args = Vec::new();
                while let Some(t) = self.peek() {
                    if matches!(t, Tok::Pipe | Tok::Close) {
                        break;
                    }
                    args.push(self.operand()?);
                }
                args.extend(piped);
                Ok(Expr::Call {
                    name,
                    args,
                    offset: at,
                })
            }
            None => err(at, "expected an expression"),
            _ => {
                if piped.is_some() {
                    return err(at, "after `|` there must be a function name");
                }
                let e = self.operand()?;
                if let Some(t) = self.peek() {
                    if !matches!(t, Tok::Pipe | Tok::Close) {
                        return err(
                            self.at(),
                            "a value cannot be called like a function; put the function name first",
                        );
                    }
                }
                Ok(e)
            }
        }
    }

    fn operand(&mut self) -> Result<Expr, ParseError> {
        let at = self.at();
        let Some((tok, _)) = self.toks.get(self.i).cloned() else {
            return err(at, "expected an expression");
        };
        self.i += 1;
        Ok(match tok {
            Tok::Field(p) => Expr::Path(p),
            Tok::Str(s) => Expr::Str(s),
            Tok::Num(n) => Expr::Num(n),
            Tok::Ident(i) if i == "true" => Expr::Bool(true),
            Tok::Ident(i) if i == "false" => Expr::Bool(false),
            Tok::Ident(i) if i == "nil" => Expr::Nil,
            Tok::Ident(name) => Expr::Call {
                name,
                args: Vec::new(),
                offset: at,
            },
            Tok::Open => {
                let e = self.pipeline()?;
                if self.peek() != Some(&Tok::Close) {
                    return err(self.at(), "missing `)`");
                }
                let close_at = self.toks[self.i].1;
                self.i += 1;
                // Go's `(expr).field.sub` (no space before the dot): a field of the value, read
                // with `get`.
                match self.toks.get(self.i) {
                    Some((Tok::Field(segs), f_at))
                        if *f_at == close_at + 1
                            && !segs.is_empty()
                            && !segs[0].starts_with('$') =>
                    {
                        let segs = segs.clone();
                        self.i += 1;
                        Expr::Call {
                            name: "get".into(),
                            args: std::iter::once(e)
                                .chain(segs.into_iter().map(Expr::Str))
                                .collect(),
                            offset: at,
                        }
                    }
                    _ => e,
                }
            }
            Tok::Close => return err(at, "unexpected `)`"),
            Tok::Pipe => return err(at, "unexpected `|`"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Part> {
        parse(s).unwrap()
    }

    #[test]
    fn paths_and_text() {
        assert_eq!(
            p("{{ .metadata.name }}-assets"),
            vec![
                Part::Expr(Expr::Path(vec!["metadata".into(), "name".into()])),
                Part::Text("-assets".into())
            ]
        );
        assert_eq!(p("plain"), vec![Part::Text("plain".into())]);
        assert_eq!(p("{{ . }}"), vec![Part::Expr(Expr::Path(vec![]))]);
    }

    #[test]
    fn pipes_become_last_argument() {
        let parts = p(r#"{{ .spec.tier | default "small" | upper }}"#);
        let Part::Expr(Expr::Call { name, args, .. }) = &parts[0] else {
            panic!()
        };
        assert_eq!(name, "upper");
        let Expr::Call {
            name, args: inner, ..
        } = &args[0]
        else {
            panic!()
        };
        assert_eq!(name, "default");
        assert_eq!(inner[0], Expr::Str("small".into()));
        assert_eq!(inner[1], Expr::Path(vec!["spec".into(), "tier".into()]));
    }

    #[test]
    fn calls_and_parens() {
        let parts = p("{{ trunc 20 (lower .metadata.name) }}");
        let Part::Expr(Expr::Call { name, args, .. }) = &parts[0] else {
            panic!()
        };
        assert_eq!(name, "trunc");
        assert_eq!(args.len(), 2);
    }

    #[test]
    fn trim_markers() {
        assert_eq!(
            p("a  {{- .x -}}  b"),
            vec![
                Part::Text("a".into()),
                Part::Expr(Expr::Path(vec!["x".into()])),
                Part::Text("b".into())
            ]
        );
    }

    #[test]
    fn errors_have_offsets() {
        assert_eq!(parse("ab {{ .x").unwrap_err().offset, 3);
        let e = parse("ab{{ if .x }}").unwrap_err();
        assert!(e.message.contains("without its `end`"), "{}", e.message);
        assert_eq!(e.offset, 2);
        assert!(parse("{{ range .x }}")
            .unwrap_err()
            .message
            .contains("not supported"));
        assert!(parse("{{ .x .y }}").is_err());
        assert!(parse("{{ }}").is_err());
        assert!(parse("{{ .x | }}").is_err());
        assert!(parse("{{ \"abc }}").is_err());
        assert!(parse("x }}").is_err());
    }
}
