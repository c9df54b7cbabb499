//! Sweeps: a stage written with `matrix: {lang: [de, en], n: [250, 500]}` stands for one stage
//! per combination of values (the cartesian product, first variable outermost), each with the
//! id `<id>-<value>-<value>` (`ft-de-250`) and its own fingerprint and cache entry. Cells are
//! named by their values, not their positions, so adding a value leaves every other cell's id,
//! and so its cached result, as it was. In inputs and `--target`, the sweep's own id names all
//! its cells. A variable's values may be a pipeline param holding the list
//! (`matrix: {lang: ${params.langs}}`), so sweeps over the same values share one list.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_yaml::{Mapping, Value as Yaml};

use super::{Cell, ENGINE_KEYS, Reported, Resolver, valid_id};
use crate::spec::yaml::SourceFile;

/// The most stages all sweeps of a pipeline may expand to: a slip such as a long list under
/// each of five variables fails here rather than planning millions of stages.
const MAX_CELLS: usize = 10_000;

/// One stage to resolve: a stage as written, or one cell of a sweep.
pub(super) struct Instance<'a> {
    /// Its stage id: the key it is written under, or `<key>-<value>-…` for a cell.
    pub id: String,
    /// The key it is written under, where its messages point.
    pub key: String,
    /// What is written under the key.
    pub value: &'a Yaml,
    /// A cell's value of each variable, in the order written (what `${matrix.x}` gives);
    /// `None` for a stage written out.
    pub matrix: Option<Mapping>,
}

impl Instance<'_> {
    /// Which cell of which sweep it is, for the resolved stage.
    pub fn cell(&self) -> Option<Cell> {
        Some(Cell {
            template: self.key.clone(),
            values: cell_values(self.matrix.as_ref()?),
        })
    }

    /// Who uses its id, for the message when two stages would share one.
    fn owner(&self) -> String {
        match &self.matrix {
            None => format!("stage `{}`", self.key),
            Some(m) => {
                let values: Vec<String> = cell_values(m)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("the cell {} of sweep `{}`", values.join(", "), self.key)
            }
        }
    }
}

/// What inputs may name: stage ids, and sweeps (each standing for all its cells).
#[derive(Default)]
pub(super) struct Names {
    /// The keys of `stages:`, in order, for hints.
    pub written: Vec<String>,
    /// Every stage id, cells included, in order.
    pub ids: Vec<String>,
    /// A sweep's key → its cells' ids in expansion order; `None` when its `matrix:` is wrong
    /// (reported there, so references to it add no error of their own).
    pub sweeps: HashMap<String, Option<Vec<String>>>,
    /// Each stage's `kind:` as written, for named inputs that take some kinds only.
    pub kinds: HashMap<String, String>,
    /// A cell's values, by its id.
    pub cells: HashMap<String, BTreeMap<String, String>>,
}

impl<'a> Resolver<'a> {
    /// Every stage to resolve, each sweep expanded into its cells in its place, and the names
    /// inputs may use. A wrong `matrix:` or an id used twice is reported.
    pub(super) fn instances(&mut self) -> (Vec<Instance<'a>>, Names) {
        let source: &'a SourceFile = self.source;
        let mut names = Names::default();
        let mut instances = Vec::new();
        let mut budget = MAX_CELLS;
        for (k, value) in &source.raw.stages {
            let key = key_text(k);
            names.written.push(key.clone());
            match self.sweep(&key, value, &mut budget) {
                None => instances.push(Instance {
                    id: key.clone(),
                    key,
                    value,
                    matrix: None,
                }),
                Some(Err(Reported)) => {
                    names.sweeps.insert(key, None);
                }
                Some(Ok(cells)) => {
                    names.sweeps.insert(key.clone(), Some(Vec::new()));
                    instances.extend(cells.into_iter().map(|matrix| Instance {
                        id: cell_id(&key, &matrix),
                        key: key.clone(),
                        value,
                        matrix: Some(matrix),
                    }));
                }
            }
        }
        let instances = self.unique_ids(instances, &names);
        names.record(&instances);
        (instances, names)
    }

    /// The cells of a stage written with `matrix:` (None for any other stage), each a mapping
    /// of variable → value; at most `budget` of them, which they use up.
    fn sweep(
        &mut self,
        key: &str,
        value: &Yaml,
        budget: &mut usize,
    ) -> Option<Result<Vec<Mapping>, Reported>> {
        let stage = value.as_mapping()?;
        let matrix = stage.get("matrix")?;
        // A wrong id is reported as it is written, once, rather than once per cell.
        if !valid_id(key) {
            return None;
        }
        let vars = self.matrix_variables(key, matrix);
        Some(vars.and_then(|vars| {
            self.check_used(key, stage, &vars)?;
            let count = vars
                .iter()
                .fold(1usize, |n, (_, values)| n.saturating_mul(values.len()));
            if count > *budget {
                self.error(
                    self.source.locations.key(&["stages", key, "matrix"]),
                    Some(key),
                    format!("the sweeps expand to more than {MAX_CELLS} stages"),
                    Some(format!(
                        "a sweep makes one stage per combination of its values: {count} here"
                    )),
                );
                return Err(Reported);
            }
            *budget -= count;
            Ok(product(&vars))
        }))
    }

    /// A stage cannot see its own sweep values: a variable that no param or input mentions
    /// would make cells that compute the same thing. (A misspelt reference is reported as such
    /// instead, when the stage resolves.)
    fn check_used(
        &mut self,
        key: &str,
        stage: &Mapping,
        vars: &[(String, Vec<Yaml>)],
    ) -> Result<(), Reported> {
        let mut mentioned = Vec::new();
        for (k, v) in stage {
            let k = k.as_str().unwrap_or_default();
            if k == "inputs" || !ENGINE_KEYS.contains(&k) {
                collect_variables(v, &mut mentioned);
            }
        }
        let known = |m: &String| vars.iter().any(|(name, _)| name == m);
        if !mentioned.iter().all(known) {
            return Ok(());
        }
        let mut result = Ok(());
        for (name, _) in vars.iter().filter(|(name, _)| !mentioned.contains(name)) {
            self.error(
                self.source.locations.key(&["stages", key, "matrix", name]),
                Some(key),
                format!("matrix variable `{name}` is used nowhere in the stage"),
                Some(format!(
                    "its cells would all compute the same thing: use `${{matrix.{name}}}` in a param or an input, or remove it"
                )),
            );
            result = Err(Reported);
        }
        result
    }

    /// `matrix:`, a mapping of variable → non-empty list of values; every mistake reported.
    fn matrix_variables(
        &mut self,
        key: &str,
        matrix: &Yaml,
    ) -> Result<Vec<(String, Vec<Yaml>)>, Reported> {
        let Some(map) = matrix.as_mapping().filter(|m| !m.is_empty()) else {
            self.error(
                self.source.locations.value(&["stages", key, "matrix"]),
                Some(key),
                "`matrix:` must map each variable to its values".into(),
                Some("e.g. `matrix: {lang: [de, en], n: [250, 500]}`".into()),
            );
            return Err(Reported);
        };
        let vars: Vec<Result<_, Reported>> = map
            .iter()
            .map(|(name, values)| self.matrix_variable(key, &key_text(name), values))
            .collect();
        vars.into_iter().collect()
    }

    /// One variable: a plain name and a list of distinct values that can be part of an id.
    fn matrix_variable(
        &mut self,
        key: &str,
        name: &str,
        values: &Yaml,
    ) -> Result<(String, Vec<Yaml>), Reported> {
        let loc = &self.source.locations;
        if !valid_id(name) {
            self.error(
                loc.key(&["stages", key, "matrix", name]),
                Some(key),
                format!("matrix variable `{name}` is not a plain name"),
                Some(
                    "use letters, digits, `-` and `_`; stages refer to it as `${matrix.NAME}`"
                        .into(),
                ),
            );
            return Err(Reported);
        }
        let values = self.param_list(values).unwrap_or(values);
        let Some(list) = values.as_sequence().filter(|l| !l.is_empty()) else {
            self.error(
                loc.value(&["stages", key, "matrix", name]),
                Some(key),
                format!("matrix variable `{name}` must list its values"),
                Some(format!("e.g. `{name}: [a, b]`")),
            );
            return Err(Reported);
        };
        let mut seen = HashSet::new();
        let mut result = Ok((name.to_string(), list.clone()));
        for (i, v) in list.iter().enumerate() {
            if let Some((message, hint)) = value_problem(key, name, v, &mut seen) {
                let pos = loc.value(&["stages", key, "matrix", name, &i.to_string()]);
                self.error(pos, Some(key), message, hint);
                result = Err(Reported);
            }
        }
        result
    }

    /// The pipeline param a variable's values name as a whole (`lang: ${params.langs}`), so
    /// several sweeps share one list: adding a language is one edit.
    fn param_list(&self, values: &Yaml) -> Option<&'a Yaml> {
        let source: &'a SourceFile = self.source;
        let name = values
            .as_str()?
            .strip_prefix("${params.")?
            .strip_suffix('}')?;
        source.raw.params.get(name)
    }

    /// The instances whose id no earlier stage or sweep uses; the others are reported.
    fn unique_ids(&mut self, instances: Vec<Instance<'a>>, names: &Names) -> Vec<Instance<'a>> {
        // A sweep's own id names its cells, so it is taken too.
        let mut owners: HashMap<String, String> = names
            .sweeps
            .keys()
            .map(|k| (k.clone(), format!("sweep `{k}`")))
            .collect();
        let mut unique = Vec::with_capacity(instances.len());
        for at in instances {
            let Some(first) = owners.get(&at.id) else {
                owners.insert(at.id.clone(), at.owner());
                unique.push(at);
                continue;
            };
            let message = format!(
                "stage id `{}` is used twice: by {first} and by {}",
                at.id,
                at.owner()
            );
            self.error(
                self.source.locations.key(&["stages", &at.key]),
                Some(&at.id),
                message,
                Some("rename one of them; a sweep's cells are named `<id>-<value>-…`".into()),
            );
        }
        unique
    }
}

impl Names {
    /// The ids, kinds and cells of the stages to resolve.
    fn record(&mut self, instances: &[Instance]) {
        for at in instances {
            self.ids.push(at.id.clone());
            let kind = at.value.get("kind").and_then(Yaml::as_str);
            if let Some(kind) = kind {
                self.kinds.insert(at.id.clone(), kind.to_string());
            }
            if let Some(cell) = at.cell() {
                if let Some(Some(ids)) = self.sweeps.get_mut(&cell.template) {
                    ids.push(at.id.clone());
                }
                self.cells.insert(at.id.clone(), cell.values);
            }
        }
    }
}

/// What is wrong with value `v` of variable `name`, if anything (`seen`: its values so far).
fn value_problem(
    key: &str,
    name: &str,
    v: &Yaml,
    seen: &mut HashSet<String>,
) -> Option<(String, Option<String>)> {
    let text = match value_text(v) {
        None => {
            let message = "a matrix value must be a string, a number or a boolean";
            return Some((message.into(), None));
        }
        Some(text) => text,
    };
    if !valid_id(&text) {
        Some((
            format!("matrix value `{text}` cannot be part of a stage id"),
            Some(format!(
                "the cells are named by their values (`{key}-…`): use letters, digits, `-` and `_`"
            )),
        ))
    } else if !seen.insert(text.clone()) {
        Some((
            format!("matrix value `{text}` appears twice in `{name}`"),
            Some("each value names cells: list it once".into()),
        ))
    } else {
        None
    }
}

/// Every combination of the variables' values, first variable outermost, in the order written.
fn product(vars: &[(String, Vec<Yaml>)]) -> Vec<Mapping> {
    vars.iter()
        .fold(vec![Mapping::new()], |cells, (name, values)| {
            let name = Yaml::String(name.clone());
            cells
                .iter()
                .flat_map(|cell| {
                    values.iter().map(|v| {
                        let mut cell = cell.clone();
                        cell.insert(name.clone(), v.clone());
                        cell
                    })
                })
                .collect()
        })
}

/// The names of the `${matrix.x}` references in the strings of `value`.
fn collect_variables(value: &Yaml, out: &mut Vec<String>) {
    match value {
        Yaml::String(s) => {
            for (_, rest) in s
                .match_indices("${matrix.")
                .map(|(i, m)| s.split_at(i + m.len()))
            {
                out.extend(rest.split_once('}').map(|(name, _)| name.to_string()));
            }
        }
        Yaml::Sequence(items) => items.iter().for_each(|v| collect_variables(v, out)),
        Yaml::Mapping(map) => map.values().for_each(|v| collect_variables(v, out)),
        Yaml::Tagged(t) => collect_variables(&t.value, out),
        _ => {}
    }
}

/// `<key>-<value>-<value>`.
fn cell_id(key: &str, matrix: &Mapping) -> String {
    let mut id = key.to_string();
    for v in matrix.values() {
        id.push('-');
        id.push_str(&value_text(v).unwrap_or_default());
    }
    id
}

fn cell_values(matrix: &Mapping) -> BTreeMap<String, String> {
    matrix
        .iter()
        .map(|(k, v)| (key_text(k), value_text(v).unwrap_or_default()))
        .collect()
}

/// A mapping key as text (non-string keys as YAML shows them, for messages).
pub(super) fn key_text(k: &Yaml) -> String {
    k.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{k:?}"))
}

/// A scalar as a cell id spells it.
fn value_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_the_cartesian_product_first_variable_outermost() {
        let vars = vec![
            (
                "lang".to_string(),
                serde_yaml::from_str("[de, en]").unwrap(),
            ),
            ("n".to_string(), serde_yaml::from_str("[250, 500]").unwrap()),
        ];
        let ids: Vec<String> = product(&vars).iter().map(|m| cell_id("ft", m)).collect();
        assert_eq!(ids, ["ft-de-250", "ft-de-500", "ft-en-250", "ft-en-500"]);
    }

    #[test]
    fn matrix_references_are_found_in_nested_strings() {
        let stage: Yaml = serde_yaml::from_str(
            "{a: [\"x-${matrix.lang}\"], b: {c: \"${matrix.n}/${matrix.lang}\"}}",
        )
        .unwrap();
        let mut names = Vec::new();
        collect_variables(&stage, &mut names);
        assert_eq!(names, ["lang", "n", "lang"]);
    }
}
