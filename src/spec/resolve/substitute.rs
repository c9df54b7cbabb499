//! `${params.x}` and `${matrix.x}` references in a stage's params and inputs: a string that is
//! exactly one reference takes the value with its type (`n: ${matrix.n}` stays a number);
//! otherwise the value is spliced in as text (`ft-${matrix.lang}`). What references produce is
//! capped ([`MAX_SUBSTITUTED`]), so a short file cannot make the resolved params huge.

use serde_yaml::{Mapping, Value as Yaml};

use super::sweep::Instance;
use super::{MAX_SUBSTITUTED, Resolver};
use crate::spec::diagnostic::did_you_mean;

/// Where a reference looks its name up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The pipeline's `params:` (`${params.x}`, or plain `${x}` inside a longer string).
    Params,
    /// The stage's sweep values (`${matrix.x}`).
    Matrix,
}

/// One `${scope.name}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reference {
    pub scope: Scope,
    pub name: String,
}

/// A bare name is a param, as in `${x}`.
impl From<&str> for Reference {
    fn from(name: &str) -> Self {
        Reference {
            scope: Scope::Params,
            name: name.to_string(),
        }
    }
}

impl Reference {
    fn parse(text: &str) -> Reference {
        match text.strip_prefix("matrix.") {
            Some(name) => Reference {
                scope: Scope::Matrix,
                name: name.to_string(),
            },
            None => text.strip_prefix("params.").unwrap_or(text).into(),
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = match self.scope {
            Scope::Params => "params",
            Scope::Matrix => "matrix",
        };
        write!(f, "${{{scope}.{}}}", self.name)
    }
}

/// What the references of one stage may name.
pub(super) struct Vars<'a> {
    pub params: &'a Mapping,
    /// The cell's values, for a cell of a sweep.
    pub matrix: Option<&'a Mapping>,
}

/// Only params: a stage written out.
impl<'a> From<&'a Mapping> for Vars<'a> {
    fn from(params: &'a Mapping) -> Self {
        Vars {
            params,
            matrix: None,
        }
    }
}

impl Vars<'_> {
    fn get(&self, r: &Reference) -> Option<&Yaml> {
        match r.scope {
            Scope::Params => self.params.get(r.name.as_str()),
            Scope::Matrix => self.matrix?.get(r.name.as_str()),
        }
    }
}

/// Why a string's references cannot be expanded.
#[derive(Debug, PartialEq)]
pub(super) enum Unexpanded {
    /// Nothing has this name.
    Unknown(Reference),
    /// Expanding this reference went past the budget.
    TooLong(Reference),
}

// Substitution over a stage's YAML, with located errors.
impl Resolver<'_> {
    /// Replaces the references in every string of `value` (at YAML `path`, in stage `at`).
    pub(super) fn substitute(&mut self, value: &mut Yaml, path: &mut Vec<String>, at: &Instance) {
        if self.substituted > MAX_SUBSTITUTED {
            return; // reported once, where it happened
        }
        match value {
            Yaml::String(s) if s.contains("${") => {
                let budget = MAX_SUBSTITUTED - self.substituted;
                let vars = Vars {
                    params: &self.source.raw.params,
                    matrix: at.matrix.as_ref(),
                };
                match expand(s, vars, budget) {
                    Ok(v) => {
                        self.substituted += yaml_len(&v);
                        *value = v;
                    }
                    Err(why) => self.report_unexpanded(why, path, at),
                }
            }
            Yaml::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    self.substitute(item, path, at);
                    path.pop();
                }
            }
            Yaml::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    path.push(k.as_str().unwrap_or_default().to_string());
                    self.substitute(v, path, at);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// At the string holding the reference.
    fn report_unexpanded(&mut self, why: Unexpanded, path: &[String], at: &Instance) {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let pos = self.source.locations.value(&refs);
        match why {
            Unexpanded::TooLong(r) => {
                self.substituted = MAX_SUBSTITUTED + 1;
                self.error(
                    pos,
                    Some(&at.id),
                    format!(
                        "`{r}` makes the substituted params longer than {} MiB",
                        MAX_SUBSTITUTED >> 20
                    ),
                    Some("reference long params fewer times".into()),
                );
            }
            Unexpanded::Unknown(r) => {
                let hint = match r.scope {
                    Scope::Params => self.unknown_param_hint(&r.name),
                    Scope::Matrix => unknown_variable_hint(&r.name, at.matrix.as_ref()),
                };
                self.error(
                    pos,
                    Some(&at.id),
                    format!("unresolved reference `{r}`"),
                    Some(hint),
                );
            }
        }
    }

    /// The param meant, else the params there are, else where `params:` goes.
    fn unknown_param_hint(&self, name: &str) -> String {
        let known: Vec<String> = self
            .source
            .raw
            .params
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        match did_you_mean(name, known.iter().map(String::as_str)) {
            Some(m) => format!("did you mean `${{params.{m}}}`?"),
            None if known.is_empty() => {
                "the pipeline has no `params:` block; add one at the top level".into()
            }
            None => format!("defined params: {}", known.join(", ")),
        }
    }
}

/// The variable meant, else the stage's variables, else that only sweeps have them.
fn unknown_variable_hint(name: &str, matrix: Option<&Mapping>) -> String {
    let Some(matrix) = matrix else {
        return "`${matrix.…}` names a value of the stage's `matrix:`, and this stage has none"
            .into();
    };
    let known: Vec<&str> = matrix.keys().filter_map(Yaml::as_str).collect();
    match did_you_mean(name, known.iter().copied()) {
        Some(m) => format!("did you mean `${{matrix.{m}}}`?"),
        None => format!("the stage's matrix variables: {}", known.join(", ")),
    }
}

/// A value's size for [`MAX_SUBSTITUTED`]: string bytes, 1 per other node. Costs at most what it
/// returns, so the budget bounds the work too.
pub(super) fn yaml_len(v: &Yaml) -> usize {
    match v {
        Yaml::String(s) => s.len().max(1),
        Yaml::Sequence(items) => items.iter().map(yaml_len).fold(1, usize::saturating_add),
        Yaml::Mapping(m) => m
            .iter()
            .map(|(k, v)| yaml_len(k).saturating_add(yaml_len(v)))
            .fold(1, usize::saturating_add),
        Yaml::Tagged(t) => yaml_len(&t.value).saturating_add(1),
        _ => 1,
    }
}

/// The whole string is one `${params.x}` or `${matrix.x}`: its value keeps its type.
fn whole_reference(s: &str) -> Option<Reference> {
    let inner = s.strip_prefix("${")?.strip_suffix('}')?;
    let scoped = inner.starts_with("params.") || inner.starts_with("matrix.");
    (scoped && !inner.contains('}')).then(|| Reference::parse(inner))
}

/// Expands references in one string, producing at most `budget` ([`yaml_len`]).
pub(super) fn expand<'v>(
    s: &str,
    vars: impl Into<Vars<'v>>,
    budget: usize,
) -> Result<Yaml, Unexpanded> {
    let vars = vars.into();
    let lookup = |r: Reference| match vars.get(&r) {
        None => Err(Unexpanded::Unknown(r)),
        Some(v) if yaml_len(v) > budget => Err(Unexpanded::TooLong(r)),
        Some(v) => Ok(v.clone()),
    };
    if let Some(r) = whole_reference(s) {
        return lookup(r);
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Unexpanded::Unknown(after.into()));
        };
        let r = Reference::parse(&after[..end]);
        match lookup(r.clone())? {
            Yaml::String(v) => out.push_str(&v),
            Yaml::Number(n) => out.push_str(&n.to_string()),
            Yaml::Bool(b) => out.push_str(&b.to_string()),
            _ => return Err(Unexpanded::Unknown(r)),
        }
        if out.len() > budget {
            return Err(Unexpanded::TooLong(r));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Yaml::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_references_keep_their_type_whole_and_splice_as_text() {
        let params: Mapping = serde_yaml::from_str("n: 64").unwrap();
        let matrix: Mapping = serde_yaml::from_str("lang: de\nsize: 250").unwrap();
        let vars = || Vars {
            params: &params,
            matrix: Some(&matrix),
        };
        let expand = |s: &str| expand(s, vars(), MAX_SUBSTITUTED);
        assert_eq!(expand("${matrix.size}"), Ok(Yaml::Number(250.into())));
        assert_eq!(
            expand("ft-${matrix.lang}-${params.n}"),
            Ok(Yaml::String("ft-de-64".into()))
        );
        let unknown = Reference {
            scope: Scope::Matrix,
            name: "lng".into(),
        };
        assert_eq!(expand("${matrix.lng}"), Err(Unexpanded::Unknown(unknown)));
        // A stage written out has no matrix values.
        assert!(matches!(
            super::expand("${matrix.lang}", &params, MAX_SUBSTITUTED),
            Err(Unexpanded::Unknown(Reference {
                scope: Scope::Matrix,
                ..
            }))
        ));
        assert_eq!(
            unknown_variable_hint("lng", Some(&matrix)),
            "did you mean `${matrix.lang}`?"
        );
    }
}
