//! A parser for the Go-template surface Katalogs are written in.
//!
//! Only expressions are supported (`{{ .spec.x }}`, pipes, function calls, parentheses,
//! string/number/bool literals, `{{-`/`-}}` trimming); actions such as `if`/`range` are not, and
//! are reported as such rather than mis-rendered.

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
    let mut parts = Vec::new();
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
            parts.push(Part::Text(text.to_string()));
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
        let expr = parse_action(inner, inner_start)?;
        parts.push(Part::Expr(expr));
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
        parts.push(Part::Text(text.to_string()));
    }
    Ok(parts)
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
                    i += 1;
                    if i < b.len() && b[i] != b'.' && !b[i].is_ascii_whitespace() && b[i] != b')' {
                        return err(at, "variables other than `$` are not supported");
                    }
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
            return err(*at, format!("`{name}` actions are not supported; use `when`/`or` on the entry, or `default`"));
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
                self.i += 1;
                e
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
        assert!(parse("{{ if .x }}")
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
