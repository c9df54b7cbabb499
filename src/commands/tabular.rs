//! Recorded values as rows, for `cairn metrics` and `cairn params`: nested JSON flattened to
//! (stage, group, name) → value, one revision beside another, printed as an aligned table,
//! Markdown or JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Where a value sits: stage, group (a split for metrics; empty when none) and name (nested
/// keys joined by dots).
pub type Key = (String, String, String);

/// Flattens one stage's record: `{test: {accuracy: 0.9}}` → (`test`, `accuracy`) with
/// `grouped`, else (``, `test.accuracy`).
pub fn flatten(
    stage: &str,
    value: &BTreeMap<String, Value>,
    grouped: bool,
) -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in value {
        match v {
            Value::Object(inner) if grouped => {
                for (name, leaf) in leaves(inner) {
                    out.insert((stage.to_string(), k.clone(), name), leaf);
                }
            }
            Value::Object(inner) => {
                for (name, leaf) in leaves(inner) {
                    out.insert(
                        (stage.to_string(), String::new(), format!("{k}.{name}")),
                        leaf,
                    );
                }
            }
            leaf => {
                out.insert((stage.to_string(), String::new(), k.clone()), leaf.clone());
            }
        }
    }
    out
}

/// Every scalar (or array) under an object, by its dotted path.
fn leaves(map: &serde_json::Map<String, Value>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (k, v) in map {
        match v {
            Value::Object(inner) => {
                for (name, leaf) in leaves(inner) {
                    out.push((format!("{k}.{name}"), leaf));
                }
            }
            leaf => out.push((k.clone(), leaf.clone())),
        }
    }
    out
}

/// How a table is printed.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for the terminal.
    Table,
    /// A Markdown table (for a pull request or a report).
    Md,
    /// JSON.
    Json,
}

/// One revision's values beside another's.
pub struct Diff {
    /// The old side's label (a git revision).
    pub old_label: String,
    pub rows: Vec<(Key, Option<Value>, Option<Value>)>,
}

impl Diff {
    /// The keys of either side, with both values; `all`: also those that did not change.
    pub fn new(
        old_label: &str,
        old: &BTreeMap<Key, Value>,
        new: &BTreeMap<Key, Value>,
        all: bool,
    ) -> Diff {
        let mut keys: Vec<&Key> = old.keys().chain(new.keys()).collect();
        keys.sort();
        keys.dedup();
        let rows = keys
            .into_iter()
            .map(|k| (k.clone(), old.get(k).cloned(), new.get(k).cloned()))
            .filter(|(_, a, b)| all || a != b)
            .collect();
        Diff {
            old_label: old_label.to_string(),
            rows,
        }
    }
}

/// The rows of `values`: stage, group, name and value.
pub fn render_values(values: &BTreeMap<Key, Value>, group: &str, format: Format) -> String {
    if format == Format::Json {
        let rows: Vec<Value> = values
            .iter()
            .map(|((s, g, n), v)| json!({"stage": s, group: g, "name": n, "value": v}))
            .collect();
        return serde_json::to_string_pretty(&rows).expect("json") + "\n";
    }
    let header = ["stage", group, "name", "value"].map(String::from).to_vec();
    let body = values
        .iter()
        .map(|((s, g, n), v)| vec![s.clone(), g.clone(), n.clone(), shown(Some(v))])
        .collect();
    grid(header, body, format)
}

/// The diff's rows: stage, group, name, the old value, the workspace's and the change.
pub fn render_diff(diff: &Diff, group: &str, format: Format) -> String {
    if format == Format::Json {
        let rows: Vec<Value> = diff
            .rows
            .iter()
            .map(|((s, g, n), a, b)| {
                json!({"stage": s, group: g, "name": n, "old": a, "new": b,
                       "change": change(a.as_ref(), b.as_ref()).and_then(|c| c.parse::<f64>().ok())})
            })
            .collect();
        return serde_json::to_string_pretty(
            &json!({"old": diff.old_label, "new": "workspace", "rows": rows}),
        )
        .expect("json")
            + "\n";
    }
    if diff.rows.is_empty() {
        return format!("no change since {}\n", diff.old_label);
    }
    let header = [
        "stage",
        group,
        "name",
        &diff.old_label,
        "workspace",
        "change",
    ]
    .map(String::from)
    .to_vec();
    let body = diff
        .rows
        .iter()
        .map(|((s, g, n), a, b)| {
            let delta = change(a.as_ref(), b.as_ref());
            let delta = delta.unwrap_or_else(|| match (a, b) {
                (None, _) => "added".into(),
                (_, None) => "removed".into(),
                (a, b) if a == b => String::new(),
                _ => "changed".into(),
            });
            vec![
                s.clone(),
                g.clone(),
                n.clone(),
                shown(a.as_ref()),
                shown(b.as_ref()),
                delta,
            ]
        })
        .collect();
    grid(header, body, format)
}

/// `new − old` for two numbers, signed; `None` otherwise.
fn change(old: Option<&Value>, new: Option<&Value>) -> Option<String> {
    let (a, b) = (old?.as_f64()?, new?.as_f64()?);
    let integral = old?.is_i64() && new?.is_i64();
    Some(match integral {
        true => format!("{:+}", b as i64 - a as i64),
        false => format!("{:+.4}", b - a),
    })
}

/// A value for a cell: floats to 4 decimals, strings bare, `-` when absent.
pub fn shown(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::Number(n)) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap_or(f64::NAN)),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            let text = other.to_string();
            match text.chars().count() > 60 {
                true => text.chars().take(57).collect::<String>() + "...",
                false => text,
            }
        }
    }
}

/// Aligned columns (numbers right-aligned) or a Markdown table.
fn grid(header: Vec<String>, body: Vec<Vec<String>>, format: Format) -> String {
    let mut out = String::new();
    if format == Format::Md {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | ").replace('\n', " "));
        out.push_str(&line(&header));
        let rule: Vec<String> = (0..header.len())
            .map(|i| if i >= 3 { "---:".into() } else { "---".into() })
            .collect();
        out.push_str(&line(&rule));
        for row in &body {
            out.push_str(&line(row));
        }
        return out;
    }
    let width = |i: usize| {
        body.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    for row in std::iter::once(&header).chain(&body) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| match i >= 3 {
                true => format!("{c:>w$}"),
                false => format!("{c:<w$}"),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn splits_become_groups_and_nested_keys_dotted_names() {
        let m = record(json!({"test": {"f1": 0.5, "per_class": {"joy": 0.7}}, "steps": 10}));
        let rows = flatten("eval", &m, true);
        let keys: Vec<_> = rows.keys().map(|(_, g, n)| format!("{g}/{n}")).collect();
        assert_eq!(keys, ["/steps", "test/f1", "test/per_class.joy"]);
        let flat = flatten("eval", &m, false);
        assert!(flat.contains_key(&("eval".into(), String::new(), "test.per_class.joy".into())));
    }

    #[test]
    fn a_diff_lists_changes_added_and_removed_with_signed_deltas() {
        let old = flatten(
            "s",
            &record(json!({"test": {"f1": 0.5, "gone": 1}, "n": 3})),
            true,
        );
        let new = flatten(
            "s",
            &record(json!({"test": {"f1": 0.75, "new": 2}, "n": 3})),
            true,
        );
        let diff = Diff::new("HEAD", &old, &new, false);
        let text = render_diff(&diff, "split", Format::Table);
        assert!(text.contains("+0.2500"), "{text}");
        assert!(text.contains("added") && text.contains("removed"), "{text}");
        assert!(!text.contains(" n "), "unchanged rows are left out: {text}");
        let all = Diff::new("HEAD", &old, &new, true);
        assert_eq!(all.rows.len(), 4);
        let md = render_diff(&diff, "split", Format::Md);
        assert!(
            md.starts_with("| stage | split | name | HEAD | workspace | change |"),
            "{md}"
        );
        let same = Diff::new("HEAD", &new, &new, false);
        assert_eq!(
            render_diff(&same, "split", Format::Table),
            "no change since HEAD\n"
        );
    }
}
