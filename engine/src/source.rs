//! Source files and the position of every node in them.
//!
//! Values are parsed with serde_yaml_ng; positions come from a second, event-level pass with
//! yaml-rust2, indexed by [`Path`]. Keeping positions beside the values (instead of inside them)
//! leaves the model plain JSON, which is what templates and Kubernetes want.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::diagnostic::{Diagnostic, Severity};
use crate::path::Path;

/// A line and column, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Where each key and value of one YAML document starts.
#[derive(Debug, Default, Clone)]
pub struct PosIndex {
    keys: HashMap<Path, Pos>,
    values: HashMap<Path, Pos>,
    /// Where the document starts.
    pub start: Pos,
}

impl PosIndex {
    /// Position of the key that leads to `path`; for a path that does not exist (a missing
    /// field), the key of the nearest ancestor that has one, else the nearest value.
    pub fn key(&self, path: &Path) -> Pos {
        let mut p = Some(path.clone());
        while let Some(cur) = p {
            if let Some(pos) = self.keys.get(&cur) {
                return *pos;
            }
            if self.values.contains_key(&cur) {
                return self.value(&cur);
            }
            p = cur.parent();
        }
        self.start
    }
    /// Position of the value at `path`, falling back to the nearest ancestor.
    pub fn value(&self, path: &Path) -> Pos {
        let mut p = Some(path.clone());
        while let Some(cur) = p {
            if let Some(pos) = self.values.get(&cur).or_else(|| self.keys.get(&cur)) {
                return *pos;
            }
            p = cur.parent();
        }
        self.start
    }
}

/// One parsed YAML document: its value and its positions.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: serde_json::Value,
    pub pos: PosIndex,
}

/// A YAML file in memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name diagnostics print (a path as the user gave it).
    pub name: String,
    pub text: String,
    /// The directory files it names (`crdFile`, `crFiles`) are read from: the file's own,
    /// when it was read from disk.
    pub dir: Option<std::path::PathBuf>,
}

/// The largest file a Katalog may name beside it (`crdFile`, `crFiles`).
pub const MAX_BESIDE_BYTES: u64 = 4 << 20;

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            dir: None,
        }
    }

    /// Read a file from disk; the files it names are read from its directory.
    pub fn read(path: &std::path::Path) -> std::io::Result<Self> {
        let mut f = Self::new(path.display().to_string(), std::fs::read_to_string(path)?);
        f.dir = Some(
            path.parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default(),
        );
        Ok(f)
    }

    /// The text of a file this one names, relative to its directory (as upstream resolves
    /// `crdFile` and `crFiles`), or why it cannot be read.
    pub fn beside(&self, rel: &str) -> Result<String, String> {
        if rel.starts_with("http://") || rel.starts_with("https://") {
            return Err("URLs are not fetched; put the file beside the Katalog".into());
        }
        let Some(dir) = &self.dir else {
            return Err(format!(
                "{} was not read from a directory, so files beside it cannot be read; give `apiTypes` (kubectl orkestra apply records them from crdFile)",
                self.name
            ));
        };
        let path = dir.join(rel);
        let size = std::fs::metadata(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        if size > MAX_BESIDE_BYTES {
            return Err(format!(
                "{} is {size} bytes, over the limit of {MAX_BESIDE_BYTES}",
                path.display()
            ));
        }
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    /// Parse every document in the file. A syntax error ends parsing with one diagnostic that
    /// points at the offending line; the documents before it are still returned.
    pub fn documents(&self) -> (Vec<Document>, Vec<Diagnostic>) {
        let mut docs = Vec::new();
        let mut diags = Vec::new();
        let positions = match index_positions(&self.text) {
            Ok(p) => p,
            Err(e) => {
                diags.push(Diagnostic::new(
                    Severity::Error,
                    "yaml-syntax",
                    &self.name,
                    e.1,
                    format!("YAML syntax: {}", e.0),
                ));
                return (docs, diags);
            }
        };
        for (i, de) in serde_yaml_ng::Deserializer::from_str(&self.text).enumerate() {
            match <serde_json::Value as serde::Deserialize>::deserialize(de) {
                Ok(serde_json::Value::Null) => {}
                Ok(value) => docs.push(Document {
                    value,
                    pos: positions.get(i).cloned().unwrap_or_default(),
                }),
                Err(e) => {
                    let pos = e
                        .location()
                        .map(|l| Pos {
                            line: l.line(),
                            column: l.column(),
                        })
                        .unwrap_or_default();
                    let msg = e.to_string();
                    // serde_yaml_ng appends " at line L column C"; the diagnostic has its own.
                    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                    diags.push(Diagnostic::new(
                        Severity::Error,
                        "yaml-syntax",
                        &self.name,
                        pos,
                        format!("YAML: {msg}"),
                    ));
                    break;
                }
            }
        }
        (docs, diags)
    }

    /// The text of line `n` (1-based), for showing under a diagnostic.
    pub fn line(&self, n: usize) -> Option<&str> {
        self.text.lines().nth(n.checked_sub(1)?)
    }
}

/// Builds a [`PosIndex`] per document from yaml-rust2's marked events.
#[derive(Default)]
struct Indexer {
    docs: Vec<PosIndex>,
    /// Open containers: the path of the container and, for mappings, the pending key.
    stack: Vec<Frame>,
}

enum Frame {
    Map { path: Path, key: Option<String> },
    Seq { path: Path, next: usize },
}

impl Indexer {
    fn pos(m: &Marker) -> Pos {
        // yaml-rust2 markers: line is 1-based, col is 0-based.
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }

    /// The path of the node that starts now, and whether it is a mapping key.
    fn next_node(&mut self) -> Option<(Path, bool)> {
        match self.stack.last_mut() {
            None => Some((Path::root(), false)),
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                Some((p, false))
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some((path.key(&k), false)),
                None => Some((path.clone(), true)),
            },
        }
    }

    fn doc(&mut self) -> &mut PosIndex {
        if self.docs.is_empty() {
            self.docs.push(PosIndex::default());
        }
        self.docs.last_mut().expect("pushed above")
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Self::pos(&mark);
        match ev {
            Event::DocumentStart => {
                self.docs.push(PosIndex {
                    start: pos,
                    ..Default::default()
                });
                self.stack.clear();
            }
            Event::Scalar(text, ..) => {
                if let Some((path, is_key)) = self.next_node() {
                    if is_key {
                        let kp = path.key(&text);
                        self.doc().keys.insert(kp, pos);
                        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                            *key = Some(text);
                        }
                    } else {
                        self.doc().values.insert(path, pos);
                    }
                }
            }
            Event::Alias(_) => {
                if let Some((path, is_key)) = self.next_node() {
                    if is_key {
                        // An alias used as a key: remember something so the value has a slot.
                        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                            *key = Some("*alias".into());
                        }
                    } else {
                        self.doc().values.insert(path, pos);
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let (path, is_key) = self.next_node().unwrap_or((Path::root(), false));
                // Complex keys are rare in Katalogs; index their insides under the map's path.
                let _ = is_key;
                self.doc().values.insert(path.clone(), pos);
                self.stack.push(if is_map {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

fn index_positions(text: &str) -> Result<Vec<PosIndex>, (String, Pos)> {
    let mut ix = Indexer::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut ix, true).map_err(|e| {
        let m = e.marker();
        (e.info().to_string(), Indexer::pos(m))
    })?;
    Ok(ix.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let f = SourceFile::new("t.yaml", "a:\n  b: 1\n  list:\n    - x\n    - {y: 2}\n");
        let (docs, diags) = f.documents();
        assert!(diags.is_empty(), "{diags:?}");
        let ix = &docs[0].pos;
        let b = Path::root().key("a").key("b");
        assert_eq!(ix.key(&b), Pos { line: 2, column: 3 });
        assert_eq!(ix.value(&b), Pos { line: 2, column: 6 });
        let y = Path::root().key("a").key("list").index(1).key("y");
        assert_eq!(ix.key(&y), Pos { line: 5, column: 8 });
        assert_eq!(
            ix.value(&Path::root().key("a").key("list").index(0)),
            Pos { line: 4, column: 7 }
        );
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(ix.value(&b.key("nope")), Pos { line: 2, column: 6 });
    }

    #[test]
    fn multi_document_positions() {
        let f = SourceFile::new("t.yaml", "a: 1\n---\nb: 2\n");
        let (docs, _) = f.documents();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1].pos.key(&Path::root().key("b")),
            Pos { line: 3, column: 1 }
        );
    }

    #[test]
    fn syntax_error_has_a_position() {
        let f = SourceFile::new("t.yaml", "a: [1, 2\nb: 3\n");
        let (_, diags) = f.documents();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, "yaml-syntax");
        assert!(diags[0].line >= 1);
    }
}
