//! What `compare` reads of each input: the metric its dot path names (with an error that lists
//! what there is where the path broke), and the sweep variables that place it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{Input, StageError};

/// Whether an input is one of the runs compared or a reference drawn beside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Run,
    Reference,
}

impl Role {
    /// As the `role` column and messages write it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Reference => "reference",
        }
    }
}

/// One input's value of the metric, with what places it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub stage: &'a str,
    pub role: Role,
    /// Its sweep variables (empty when it is no sweep cell).
    pub matrix: &'a BTreeMap<String, String>,
    pub value: f64,
}

impl<'a> Entry<'a> {
    /// The entry of `input` in `role`: the metric at `path`, which must be a finite number.
    pub fn read(input: &'a Input, role: Role, path: &str) -> Result<Entry<'a>, StageError> {
        let who = format!("{} `{}`", role.name(), input.stage);
        let value = metric(&input.metrics, path).map_err(|why| {
            StageError::param("metric", format!("{who} {why}"), Some(HINT.into()))
        })?;
        Ok(Entry {
            stage: &input.stage,
            role,
            matrix: &input.matrix,
            value,
        })
    }

    /// Its value of sweep variable `name`, which param `field` names; an error listing the
    /// variables it has when it lacks it.
    pub fn variable(&self, field: &str, name: &str) -> Result<&'a str, StageError> {
        if let Some(value) = self.matrix.get(name) {
            return Ok(value);
        }
        let has = if self.matrix.is_empty() {
            "it is no sweep cell".to_string()
        } else {
            let names: Vec<&str> = self.matrix.keys().map(String::as_str).collect();
            format!("its variables: {}", names.join(", "))
        };
        Err(StageError::param(
            field,
            format!(
                "{} `{}` has no matrix variable `{name}` ({has})",
                self.role.name(),
                self.stage
            ),
            Some(format!(
                "`{field}` names a variable of the `matrix:` the runs were swept over"
            )),
        ))
    }
}

const HINT: &str = "`metric` is a dot path into the metrics `cairn metrics` shows, e.g. \
                    `test.accuracy`";

/// The number at dot path `path` in `metrics`, or why there is none (a sentence to follow the
/// input's name). A key may itself hold dots (`rows.train`): at each level the longest run of
/// segments that is a key is taken.
fn metric(metrics: &BTreeMap<String, Value>, path: &str) -> Result<f64, String> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut map: serde_json::Map<String, Value> = metrics.clone().into_iter().collect();
    let mut walked: Vec<String> = Vec::new();
    let mut rest = &segments[..];
    let value = loop {
        let found = (1..=rest.len()).rev().find_map(|k| {
            let key = rest[..k].join(".");
            map.remove(&key).map(|v| (k, key, v))
        });
        let Some((k, key, value)) = found else {
            return Err(format!(
                "has no metric `{path}` ({})",
                listing(&walked, &map)
            ));
        };
        walked.push(key);
        rest = &rest[k..];
        match value {
            Value::Object(inner) if !rest.is_empty() => map = inner,
            other if rest.is_empty() => break other,
            other => {
                return Err(format!(
                    "has no metric `{path}` (`{}` is {}, not a group of metrics)",
                    walked.join("."),
                    kind_of(&other)
                ));
            }
        }
    };
    number(&value).map_err(|why| format!("has metric `{path}` {why}"))
}

/// What a level of the metrics holds, for a path that broke there.
fn listing(walked: &[String], map: &serde_json::Map<String, Value>) -> String {
    let keys = sorted_keys(map);
    match (walked.is_empty(), keys.is_empty()) {
        (true, true) => "it records no metrics".into(),
        (true, false) => format!("its metrics: {}", keys.join(", ")),
        (false, true) => format!("`{}` is empty", walked.join(".")),
        (false, false) => format!("`{}` has: {}", walked.join("."), keys.join(", ")),
    }
}

/// `value` as a finite number, or why not.
fn number(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(v),
            _ => Err(format!("= {n}, which is not a finite number")),
        },
        // JSON has no NaN or infinity: serde_json records them as null.
        Value::Null => Err("= null (a NaN or infinite value is recorded as null)".into()),
        Value::Object(map) => {
            let keys = sorted_keys(map);
            Err(format!(
                "= a group of metrics ({}), not a number: name one of them",
                keys.join(", ")
            ))
        }
        other => Err(format!("= {other}, which is {}", kind_of(other))),
    }
}

/// The keys of a level of the metrics, sorted (whatever order the producer wrote them in).
fn sorted_keys(map: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// `a number`, `a string`, ... for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a group of metrics",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metrics(value: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    fn evaluated() -> BTreeMap<String, Value> {
        metrics(json!({
            "test": {"accuracy": 0.9, "entity_f1": 0.81},
            "validation": {"accuracy": 0.8},
            "rows.train": 12,
            "skipped": {"train": "no labels"},
        }))
    }

    #[test]
    fn a_dot_path_reaches_nested_and_dotted_keys() {
        let m = evaluated();
        assert_eq!(metric(&m, "test.entity_f1"), Ok(0.81));
        assert_eq!(metric(&m, "validation.accuracy"), Ok(0.8));
        assert_eq!(metric(&m, "rows.train"), Ok(12.0));
    }

    #[test]
    fn a_broken_path_lists_what_there_is_where_it_broke() {
        let m = evaluated();
        assert_eq!(
            metric(&m, "test.f1").unwrap_err(),
            "has no metric `test.f1` (`test` has: accuracy, entity_f1)"
        );
        assert_eq!(
            metric(&m, "score").unwrap_err(),
            "has no metric `score` (its metrics: rows.train, skipped, test, validation)"
        );
        assert_eq!(
            metric(&BTreeMap::new(), "score").unwrap_err(),
            "has no metric `score` (it records no metrics)"
        );
        assert_eq!(
            metric(&m, "test.accuracy.macro").unwrap_err(),
            "has no metric `test.accuracy.macro` (`test.accuracy` is a number, not a group of \
             metrics)"
        );
    }

    #[test]
    fn only_a_finite_number_is_a_value() {
        let m = evaluated();
        assert_eq!(
            metric(&m, "test").unwrap_err(),
            "has metric `test` = a group of metrics (accuracy, entity_f1), not a number: name \
             one of them"
        );
        assert_eq!(
            metric(&m, "skipped.train").unwrap_err(),
            "has metric `skipped.train` = \"no labels\", which is a string"
        );
        let nan = metrics(json!({"loss": f64::NAN}));
        assert_eq!(
            metric(&nan, "loss").unwrap_err(),
            "has metric `loss` = null (a NaN or infinite value is recorded as null)"
        );
    }

    #[test]
    fn an_entry_names_its_role_stage_and_variables_in_errors() {
        let input = Input {
            stage: "eval-de".into(),
            metrics: evaluated(),
            matrix: [("train".to_string(), "de".to_string())].into(),
            ..Input::default()
        };
        let entry = Entry::read(&input, Role::Run, "test.accuracy").unwrap();
        assert_eq!((entry.stage, entry.value), ("eval-de", 0.9));
        assert_eq!(entry.variable("rows", "train").unwrap(), "de");
        let err = entry.variable("columns", "eval").unwrap_err();
        assert_eq!(
            err.to_string(),
            "run `eval-de` has no matrix variable `eval` (its variables: train)"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "columns"));

        let plain = Input {
            stage: "zero-shot".into(),
            ..Input::default()
        };
        let err = Entry::read(&plain, Role::Reference, "test.accuracy").unwrap_err();
        assert_eq!(
            err.to_string(),
            "reference `zero-shot` has no metric `test.accuracy` (it records no metrics)"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "metric"));
        let entry = Entry {
            stage: "zero-shot",
            role: Role::Reference,
            matrix: &plain.matrix,
            value: 0.0,
        };
        assert_eq!(
            entry.variable("x", "n").unwrap_err().to_string(),
            "reference `zero-shot` has no matrix variable `n` (it is no sweep cell)"
        );
    }
}
