//! The pipeline file as written: YAML into plain structs, and where every node sits in the file.
//!
//! Nothing here checks meaning (kinds, inputs, cycles); `resolve` does that.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::spec::diagnostic::{Diagnostic, Diagnostics};

/// A 1-based line and column in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// The top level of a pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPipeline {
    /// Names the manifest: `cache/manifests/<name>.yaml`.
    pub name: String,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// Directory that relative paths (data files, the default cache) resolve against, relative to
    /// the pipeline file. Default: the pipeline file's directory.
    #[serde(default)]
    pub root: Option<String>,
    /// Values referenced as `${params.name}` in stage params.
    #[serde(default)]
    pub params: serde_yaml::Mapping,
    /// Ordered map of stage id to stage.
    pub stages: serde_yaml::Mapping,
}

/// A path into the YAML tree: mapping keys and sequence indices as strings.
pub type NodePath = Vec<String>;

/// Where each node of the file is: the key's position (for mapping entries) and the value's.
#[derive(Debug, Default)]
pub struct Locations {
    nodes: HashMap<NodePath, (Option<Pos>, Pos)>,
    /// Keys that appear twice in one mapping, where they appear the second time.
    duplicates: Vec<(NodePath, Pos)>,
}

impl Locations {
    /// Position of the key that introduces `path` (falls back to the value's position).
    pub fn key(&self, path: &[&str]) -> Option<Pos> {
        self.find(path).map(|(k, v)| k.unwrap_or(v))
    }
    /// Position of the value at `path`.
    pub fn value(&self, path: &[&str]) -> Option<Pos> {
        self.find(path).map(|(_, v)| v)
    }
    /// The value's position, or that of the closest ancestor that exists.
    pub fn value_or_parent(&self, path: &[&str]) -> Option<Pos> {
        (0..=path.len()).rev().find_map(|n| self.value(&path[..n]))
    }
    fn find(&self, path: &[&str]) -> Option<(Option<Pos>, Pos)> {
        let key: NodePath = path.iter().map(|s| s.to_string()).collect();
        self.nodes.get(&key).copied()
    }

    fn index(text: &str) -> Locations {
        let mut builder = LocationBuilder::default();
        // Syntax errors surface from serde_yaml with their own location; ignore them here.
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        builder.locations
    }
}

enum Frame {
    Map { pending_key: Option<(String, Pos)> },
    Seq { next: usize },
}

#[derive(Default)]
struct LocationBuilder {
    locations: Locations,
    stack: Vec<(NodePath, Frame)>,
}

impl LocationBuilder {
    /// Called when a value node begins; returns its path, or None if it is a mapping key.
    fn place(&mut self, scalar: Option<&str>, pos: Pos) -> Option<NodePath> {
        let Some((path, frame)) = self.stack.last_mut() else {
            self.locations.nodes.insert(Vec::new(), (None, pos));
            return Some(Vec::new());
        };
        let (child, key_pos) = match frame {
            Frame::Map { pending_key } => match pending_key.take() {
                None => {
                    // This node is a key; complex keys are not used by pipelines.
                    *pending_key = Some((scalar.unwrap_or_default().to_string(), pos));
                    return None;
                }
                Some((key, key_pos)) => (key, Some(key_pos)),
            },
            Frame::Seq { next } => {
                *next += 1;
                ((*next - 1).to_string(), None)
            }
        };
        let mut child_path = path.clone();
        child_path.push(child);
        let previous = self
            .locations
            .nodes
            .insert(child_path.clone(), (key_pos, pos));
        if let (Some(_), Some(k)) = (previous, key_pos) {
            self.locations.duplicates.push((child_path.clone(), k));
        }
        Some(child_path)
    }
}

fn pos_of(mark: Marker) -> Pos {
    Pos {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl MarkedEventReceiver for LocationBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = pos_of(mark);
        match ev {
            Event::Scalar(value, ..) => {
                self.place(Some(&value), pos);
            }
            Event::Alias(_) => {
                self.place(None, pos);
            }
            Event::MappingStart(..) => {
                let path = self.place(None, pos).unwrap_or_default();
                self.stack.push((path, Frame::Map { pending_key: None }));
            }
            Event::SequenceStart(..) => {
                let path = self.place(None, pos).unwrap_or_default();
                self.stack.push((path, Frame::Seq { next: 0 }));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// A parsed pipeline file, before any meaning is checked.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    pub raw: RawPipeline,
    pub locations: Locations,
}

impl SourceFile {
    pub fn read(path: &Path) -> Result<SourceFile, Diagnostics> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![
                Diagnostic::new(path, None, format!("cannot read the pipeline file: {e}"))
                    .hint("check the path; pipelines usually live in pipelines/*.yaml"),
            ])
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<SourceFile, Diagnostics> {
        if let Some(pos) = too_deep(text) {
            return Err(Diagnostics(vec![
                Diagnostic::new(
                    path,
                    Some(pos),
                    format!("the YAML nests more than {MAX_FLOW_DEPTH} `[`/`{{` deep"),
                )
                .hint("look for an unclosed `[` or `{`"),
            ]));
        }
        let raw: RawPipeline = serde_yaml::from_str(text).map_err(|e| {
            let pos = e.location().map(|l| Pos {
                line: l.line(),
                col: l.column(),
            });
            let message = strip_location(&e.to_string());
            // Say what the file is, not which Rust type it failed to become.
            let message = match message
                .strip_prefix("invalid type: ")
                .and_then(|m| m.strip_suffix(", expected struct RawPipeline"))
            {
                Some(found) => format!(
                    "the file holds a {found}, but a pipeline is a mapping with `name:` and `stages:`"
                ),
                None => message,
            };
            let hint = top_level_hint(&message);
            let mut d = Diagnostic::new(path, pos, message.clone());
            if let Some(h) = hint {
                d = d.hint(h);
            }
            // serde_yaml points at the mapping; point at the second occurrence instead.
            if message.contains("duplicate entry")
                && let Some((dup, at)) = Locations::index(text).duplicates.first()
            {
                d.pos = Some(*at);
                let key = dup.last().map_or("", String::as_str);
                d = match dup.as_slice() {
                    [stages, id] if stages == "stages" => d
                        .stage(id)
                        .hint("stage ids must be unique: rename one of the two"),
                    [stages, id, ..] if stages == "stages" => d
                        .stage(id)
                        .hint(format!("`{key}:` is written twice in this stage: delete one")),
                    _ => d.hint(format!("`{key}:` is written twice here: delete one")),
                };
            }
            Diagnostics(vec![d])
        })?;
        Ok(SourceFile {
            path: path.to_path_buf(),
            raw,
            locations: Locations::index(text),
        })
    }
}

/// Deeper `[`/`{` nesting is refused before parsing: libyaml (under serde_yaml) takes time
/// quadratic in the depth (32 000 `[` took 8 s), and serde_yaml gives up at 128 levels anyway.
const MAX_FLOW_DEPTH: usize = 1000;

/// Where `[`/`{` first nest deeper than [`MAX_FLOW_DEPTH`]. Brackets in quotes and comments
/// count too: only a file with a thousand unclosed ones in its strings is refused wrongly.
fn too_deep(text: &str) -> Option<Pos> {
    let (mut depth, mut line, mut col) = (0usize, 1, 0);
    for c in text.chars() {
        col += 1;
        match c {
            '\n' => (line, col) = (line + 1, 0),
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(Pos { line, col });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// serde_yaml appends " at line L column C"; we print the location ourselves.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn top_level_hint(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("a pipeline has `name`, `description`, `root`, `params` and `stages`".into())
    } else if message.starts_with("missing field") {
        Some("every pipeline needs `name:` and `stages:`".into())
    } else if message.contains("duplicate entry") {
        Some("each key (and each stage id) may appear only once".into())
    } else if message.starts_with("the file holds") {
        Some("write `name: ...` and `stages: ...` as top-level keys (no leading `- `)".into())
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        None
    } else {
        Some("the YAML is malformed near here: check the indentation and that each `key: value` pair lines up with its siblings".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_before_the_quadratic_parse() {
        // Probing fuzz/pipeline with big inputs: 32 000 `[` took 8 s in serde_yaml's parser,
        // 200 000 several minutes.
        let text = format!(
            "name: p\nstages: {{a: 1}}\nparams: {}\n",
            "[".repeat(200_000)
        );
        let start = std::time::Instant::now();
        let e = SourceFile::parse(Path::new("p.yaml"), &text).unwrap_err();
        assert!(start.elapsed().as_secs() < 2, "{:?}", start.elapsed());
        assert_eq!(e.0[0].pos, Some(Pos { line: 3, col: 1009 }));
        assert!(e.0[0].message.contains("nests more than 1000"), "{e}");
        // Nesting that closes again does not add up.
        let text = format!(
            "name: p\nstages: {{a: 1}}\nparams: {{x: {}}}\n",
            "[1], ".repeat(5000)
        );
        assert!(too_deep(&text).is_none());
    }

    #[test]
    fn locations_point_at_keys_and_values() {
        let text = "name: p\nstages:\n  a:\n    kind: x\n    inputs: [b, c]\n";
        let loc = Locations::index(text);
        assert_eq!(loc.key(&["stages", "a"]), Some(Pos { line: 3, col: 3 }));
        assert_eq!(
            loc.value(&["stages", "a", "kind"]),
            Some(Pos { line: 4, col: 11 })
        );
        assert_eq!(
            loc.value(&["stages", "a", "inputs", "1"]),
            Some(Pos { line: 5, col: 17 })
        );
    }
}
