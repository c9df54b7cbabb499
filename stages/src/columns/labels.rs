//! Label names as table metadata: the `ClassLabel` idea. Tables hold label ids (integers); the
//! names live in the Arrow schema metadata, so they travel with the table through the cache
//! (Parquet keeps schema metadata) and every later stage, and `cairn show` can print names.
//!
//! Two schema metadata keys:
//! - [`LABELS_KEY`] (`cairn.labels`): a JSON list of names; id `i` is `names[i]`, e.g.
//!   `["sadness","joy","love","anger","fear","surprise"]`.
//! - [`LABEL_COLUMN_KEY`] (`cairn.label-column`): the column the ids are in, e.g. `label` (one
//!   id per row) or `ner_tags` (a list of ids per row).
//!
//! A token label of [`IGNORE_LABEL`] (-100) is not scored, neither by the loss nor by the
//! metrics.

use std::collections::HashMap;

use arrow::datatypes::Schema;

/// The label id that is not scored: a token that only continues a word, or a special token
/// (PyTorch's `ignore_index`, what `align-labels` writes by default).
pub const IGNORE_LABEL: i64 = -100;

/// Schema metadata key holding the label names as a JSON list of strings.
pub const LABELS_KEY: &str = "cairn.labels";
/// Schema metadata key naming the column that holds the label ids.
pub const LABEL_COLUMN_KEY: &str = "cairn.label-column";

/// The label names recorded in `schema`, if any.
pub fn label_names(schema: &Schema) -> Option<Vec<String>> {
    serde_json::from_str(schema.metadata().get(LABELS_KEY)?).ok()
}

/// The column that holds label ids, if recorded.
pub fn label_column(schema: &Schema) -> Option<&str> {
    schema.metadata().get(LABEL_COLUMN_KEY).map(String::as_str)
}

/// The metadata entries that record `names` as the labels of `column`.
pub fn metadata(column: &str, names: &[String]) -> [(String, String); 2] {
    [
        (
            LABELS_KEY.to_string(),
            serde_json::to_string(names).expect("names serialize"),
        ),
        (LABEL_COLUMN_KEY.to_string(), column.to_string()),
    ]
}

/// The name of label `id`, when it is in range.
pub fn int2str(names: &[String], id: i64) -> Option<&str> {
    usize::try_from(id)
        .ok()
        .and_then(|i| names.get(i))
        .map(String::as_str)
}

/// Looks label names up by name.
#[derive(Debug, Clone)]
pub struct LabelMap {
    names: Vec<String>,
    ids: HashMap<String, i64>,
}

impl LabelMap {
    pub fn new(names: &[String]) -> LabelMap {
        LabelMap {
            names: names.to_vec(),
            ids: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as i64))
                .collect(),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The id of `name`.
    pub fn str2int(&self, name: &str) -> Option<i64> {
        self.ids.get(name).copied()
    }

    /// The id of a label written as text: its name, or else an integer id in range.
    pub fn parse(&self, text: &str) -> Option<i64> {
        self.str2int(text).or_else(|| {
            text.parse::<i64>()
                .ok()
                .filter(|&i| int2str(&self.names, i).is_some())
        })
    }

    /// `names` shortened for error messages.
    pub fn listing(&self) -> String {
        const SHOWN: usize = 12;
        let mut s = self
            .names
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.names.len() > SHOWN {
            s.push_str(&format!(", ... ({} in all)", self.names.len()));
        }
        s
    }
}

/// scikit-learn's / torch's class weights as a param: `class-weight: balanced` (n / (k · count)
/// per label) or `class-weight: {joy: 1.0, surprise: 4.0}` (by label name; others 1).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ClassWeight {
    Rule(WeightRule),
    PerLabel(std::collections::BTreeMap<String, f64>),
}

#[derive(
    Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum WeightRule {
    Balanced,
}

impl ClassWeight {
    /// Every given weight is a positive number (a param check, located at its key).
    pub fn check(&self) -> Result<(), crate::api::StageError> {
        let ClassWeight::PerLabel(map) = self else {
            return Ok(());
        };
        match map.iter().find(|(_, w)| !(w.is_finite() && **w > 0.0)) {
            Some((label, w)) => Err(crate::api::StageError::param(
                &format!("class-weight.{label}"),
                format!("a class weight must be a positive number, got {w}"),
                None,
            )),
            None => Ok(()),
        }
    }

    /// One weight per label id `0..names.len()`, from each label's count of scored targets
    /// (`balanced`: n / (k · count), 0 for a label with none) or the map by name (others 1).
    pub fn per_label(&self, names: &[String], counts: &[usize]) -> Result<Vec<f64>, String> {
        let k = names.len();
        match self {
            ClassWeight::Rule(WeightRule::Balanced) => Ok(crate::numeric::balanced_weights(counts)),
            ClassWeight::PerLabel(map) => {
                let mut weights = vec![1.0; k];
                for (label, &w) in map {
                    let Some(i) = names.iter().position(|n| n == label) else {
                        return Err(format!(
                            "class-weight names label `{label}`, which is not one of the labels ({})",
                            names.join(", ")
                        ));
                    };
                    weights[i] = w;
                }
                Ok(weights)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_schema_metadata() {
        let names: Vec<String> = ["sadness", "joy"].map(String::from).to_vec();
        let schema = Schema::empty().with_metadata(
            metadata("label", &names)
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        assert_eq!(label_names(&schema), Some(names.clone()));
        assert_eq!(label_column(&schema), Some("label"));
        assert_eq!(int2str(&names, 1), Some("joy"));
        assert_eq!(int2str(&names, 2), None);
        assert_eq!(int2str(&names, -1), None);
        let map = LabelMap::new(&names);
        assert_eq!(map.parse("joy"), Some(1));
        assert_eq!(map.parse("0"), Some(0));
        assert_eq!(map.parse("2"), None);
        assert_eq!(map.parse("joyy"), None);
    }
}
