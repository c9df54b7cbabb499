//! From the pipeline file as written to a checked pipeline: `${params.x}` substituted, each
//! stage's kind found and its params typed, inputs and external files checked, the DAG built.
//! Every problem is collected and reported with its file:line:col and stage id.

use std::path::{Path, PathBuf};

use cairn_stages::registry::{self, Kind, ParamParseError, Parsed};
use cairn_stages::{Device, External, PrepareEnv, StageError};
use serde_yaml::Value as Yaml;

use crate::graph::Dag;
use crate::spec::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::spec::yaml::{Pos, SourceFile};

/// Keys of a stage mapping that belong to the engine; every other key is a param of the kind.
const ENGINE_KEYS: &[&str] = &["kind", "inputs", "device", "description"];

/// A pipeline ready to plan and run.
pub struct Pipeline {
    pub name: String,
    pub description: String,
    /// The pipeline file as the user named it.
    pub file: PathBuf,
    /// Relative paths resolve against this directory.
    pub root: PathBuf,
    /// Stages in declaration order.
    pub stages: Vec<StageSpec>,
    pub dag: Dag,
}

/// One stage after resolution.
pub struct StageSpec {
    pub id: String,
    pub kind: &'static Kind,
    /// The typed params, ready to run.
    pub parsed: Parsed,
    /// The params with defaults filled in, as recorded in the manifest.
    pub params: serde_json::Value,
    pub inputs: Vec<InputRef>,
    pub externals: Vec<External>,
    /// A per-stage device override (`device: cpu`).
    pub device: Option<Device>,
    /// Where the stage is written in the pipeline file (its id's key), for run-time failures.
    pub pos: Option<Pos>,
}

/// `inputs: [stage]` or `inputs: [stage.split]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRef {
    pub stage: String,
    pub split: Option<String>,
}

impl std::fmt::Display for InputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.split {
            Some(s) => write!(f, "{}.{s}", self.stage),
            None => write!(f, "{}", self.stage),
        }
    }
}

impl Pipeline {
    pub fn load(file: &Path, offline: bool) -> Result<Pipeline, Diagnostics> {
        let source = SourceFile::read(file)?;
        resolve(&source, offline)
    }

    pub fn stage(&self, id: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.id == id)
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == id)
    }

    /// A stage's run-time failure, located like a resolve-time error: the message, the stage's
    /// place in the pipeline file, its id and the kind's hint.
    pub fn stage_failure(&self, i: usize, message: &str, hint: Option<&str>) -> Diagnostic {
        let stage = &self.stages[i];
        let d = Diagnostic::new(&self.file, stage.pos, message).stage(&stage.id);
        match hint {
            Some(h) => d.hint(h),
            None => d,
        }
    }
}

/// Parses a `--device` / `device:` value.
pub fn parse_device(text: &str) -> Result<Option<Device>, String> {
    match text {
        "auto" => Ok(None),
        "cpu" => Ok(Some(Device::Cpu)),
        "cuda" => Ok(Some(Device::Cuda(0))),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Ok(Some(Device::Cuda(i))),
            _ => Err(format!("unknown device `{other}`")),
        },
    }
}

struct Resolver<'a> {
    source: &'a SourceFile,
    errors: Vec<Diagnostic>,
    /// What `${params.x}` references have produced so far, in [`yaml_len`] units.
    substituted: usize,
}

/// A problem was recorded in [`Resolver::errors`]; the caller stops, or checks on to report more.
struct Reported;

/// The most that `${params.x}` references may produce in one pipeline. Without a cap, a short
/// file referencing a long param many times makes the resolved params quadratically large.
const MAX_SUBSTITUTED: usize = 16 << 20;

/// The pipeline file, checked and resolved; else every problem found, each located.
pub fn resolve(source: &SourceFile, offline: bool) -> Result<Pipeline, Diagnostics> {
    let mut r = Resolver {
        source,
        errors: Vec::new(),
        substituted: 0,
    };
    r.check_name();
    let root = r.root();
    let stages = r.stages(&root, offline);
    if !r.errors.is_empty() {
        return Err(Diagnostics(r.errors));
    }
    let dag = Dag::build(&stages);
    if r.check_acyclic(&stages, &dag).is_err() {
        return Err(Diagnostics(r.errors));
    }
    Ok(Pipeline {
        name: source.raw.name.clone(),
        description: source.raw.description.clone(),
        file: source.path.clone(),
        root,
        stages,
        dag,
    })
}

// The whole pipeline: its name, root, stages (each checked on its own) and graph.
impl Resolver<'_> {
    fn error(
        &mut self,
        pos: Option<Pos>,
        stage: Option<&str>,
        message: String,
        hint: Option<String>,
    ) {
        let mut d = Diagnostic::new(&self.source.path, pos, message);
        if let Some(s) = stage {
            d = d.stage(s);
        }
        if let Some(h) = hint {
            d = d.hint(h);
        }
        self.errors.push(d);
    }

    /// The name becomes the manifest's file name.
    fn check_name(&mut self) {
        let name = &self.source.raw.name;
        if !valid_id(name) {
            self.error(
                self.source.locations.value(&["name"]),
                None,
                format!("pipeline name `{name}` cannot name a manifest file"),
                Some("use letters, digits, `-` and `_`".into()),
            );
        }
    }

    /// `root:` against the pipeline file's directory (the default), which must exist.
    fn root(&mut self) -> PathBuf {
        let base = match self.source.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let root = match &self.source.raw.root {
            Some(rel) => lexical_normalize(&base.join(rel)),
            None => base.to_path_buf(),
        };
        if !root.is_dir() {
            self.error(
                self.source.locations.value(&["root"]),
                None,
                format!("root directory `{}` does not exist", root.display()),
                Some("`root:` is relative to the pipeline file's directory".into()),
            );
        }
        root
    }

    /// Every stage that resolves, in declaration order; the others are reported.
    fn stages(&mut self, root: &Path, offline: bool) -> Vec<StageSpec> {
        let raw = &self.source.raw;
        if raw.stages.is_empty() {
            self.error(
                self.source.locations.key(&["stages"]),
                None,
                "the pipeline has no stages".into(),
                None,
            );
        }
        let ids: Vec<String> = raw
            .stages
            .keys()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"))
            })
            .collect();
        let env = PrepareEnv { root, offline };
        ids.iter()
            .zip(raw.stages.values())
            .filter_map(|(id, value)| self.stage(id, value, &ids, &env))
            .collect()
    }

    /// A stage cannot depend, even through others, on its own output.
    fn check_acyclic(&mut self, stages: &[StageSpec], dag: &Dag) -> Result<(), Reported> {
        let Some(cycle) = dag.find_cycle() else {
            return Ok(());
        };
        let names: Vec<&str> = cycle.iter().map(|&i| stages[i].id.as_str()).collect();
        let first = names[0];
        self.error(
            self.source.locations.key(&["stages", first]),
            Some(first),
            format!("the stages form a cycle: {} → {first}", names.join(" → ")),
            Some("a stage cannot depend, directly or not, on its own output".into()),
        );
        Err(Reported)
    }
}

// One stage.
impl Resolver<'_> {
    /// One stage, step by step. A wrong id, shape, kind or params ends its checks; wrong
    /// inputs, a wrong device or a missing file are reported and the checks go on, so one
    /// `cairn` names them all.
    fn stage(
        &mut self,
        id: &str,
        value: &Yaml,
        ids: &[String],
        env: &PrepareEnv,
    ) -> Option<StageSpec> {
        let map = self.stage_mapping(id, value).ok()?;
        let kind = self.stage_kind(id, map).ok()?;
        let inputs = self.stage_inputs(id, map, ids, kind);
        let device = self.stage_device(id, map, kind);
        let params = self.substituted_params(id, map).ok()?;
        let parsed = self.typed_params(id, kind, &params).ok()?;
        let externals = self.stage_externals(id, &parsed, env).ok()?;
        let present = self.check_externals_exist(id, &externals, env);
        let (Ok(inputs), Ok(device), Ok(())) = (inputs, device, present) else {
            return None;
        };
        Some(StageSpec {
            id: id.to_string(),
            kind,
            params: parsed.canonical.clone(),
            parsed,
            inputs,
            externals,
            device,
            pos: self.source.locations.key(&["stages", id]),
        })
    }

    /// A plain id, naming a mapping.
    fn stage_mapping<'v>(
        &mut self,
        id: &str,
        value: &'v Yaml,
    ) -> Result<&'v serde_yaml::Mapping, Reported> {
        let loc = &self.source.locations;
        if !valid_id(id) {
            self.error(
                loc.key(&["stages", id]),
                Some(id),
                format!("stage id `{id}` is not a plain name"),
                Some(
                    "use letters, digits, `-` and `_` (a `.` separates a stage from a split in inputs)"
                        .into(),
                ),
            );
            return Err(Reported);
        }
        value.as_mapping().ok_or_else(|| {
            self.error(
                loc.value(&["stages", id]),
                Some(id),
                "a stage must be a mapping with at least `kind:`".into(),
                Some(format!(
                    "e.g. `{id}: {{ kind: KIND, inputs: [STAGE] }}` (`cairn kinds` lists the kinds)"
                )),
            );
            Reported
        })
    }

    /// `kind:`, looked up in the registry.
    fn stage_kind(
        &mut self,
        id: &str,
        map: &serde_yaml::Mapping,
    ) -> Result<&'static Kind, Reported> {
        let loc = &self.source.locations;
        let Some(kind_value) = map.get("kind") else {
            self.error(
                loc.key(&["stages", id]),
                Some(id),
                "the stage has no `kind:`".into(),
                Some(known_kinds_hint()),
            );
            return Err(Reported);
        };
        let pos = loc.value(&["stages", id, "kind"]);
        let Some(name) = kind_value.as_str() else {
            self.error(
                pos,
                Some(id),
                "`kind:` must be a string".into(),
                Some(known_kinds_hint()),
            );
            return Err(Reported);
        };
        registry::lookup(name).ok_or_else(|| {
            let hint = match did_you_mean(name, registry::KINDS.iter().map(|k| k.name)) {
                Some(m) => format!("did you mean `{m}`? {}", known_kinds_hint()),
                None => known_kinds_hint(),
            };
            self.error(
                pos,
                Some(id),
                format!("unknown stage kind `{name}`"),
                Some(hint),
            );
            Reported
        })
    }

    /// `inputs:`, each naming a stage of the pipeline, as many as the kind takes.
    fn stage_inputs(
        &mut self,
        id: &str,
        map: &serde_yaml::Mapping,
        ids: &[String],
        kind: &Kind,
    ) -> Result<Vec<InputRef>, Reported> {
        let loc = &self.source.locations;
        let items = match map.get("inputs") {
            None => &[][..],
            Some(Yaml::Sequence(items)) => items.as_slice(),
            Some(_) => {
                self.error(
                    loc.value(&["stages", id, "inputs"]),
                    Some(id),
                    "`inputs:` must be a list of stage ids".into(),
                    Some("e.g. `inputs: [load]` or `inputs: [load.train]`".into()),
                );
                return Err(Reported);
            }
        };
        let inputs: Vec<Result<InputRef, Reported>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.input_ref(id, i, item, ids))
            .collect();
        let inputs: Vec<InputRef> = inputs.into_iter().collect::<Result<_, _>>()?;
        if !kind.inputs.accepts(inputs.len()) {
            self.error(
                loc.key(&["stages", id, "inputs"])
                    .or(loc.key(&["stages", id])),
                Some(id),
                format!(
                    "a `{}` stage takes {}, this one has {}",
                    kind.name,
                    kind.inputs.describe(),
                    inputs.len()
                ),
                None,
            );
            return Err(Reported);
        }
        Ok(inputs)
    }

    /// Input `i` of stage `id`: `stage` or `stage.split`, the stage one of `ids`.
    fn input_ref(
        &mut self,
        id: &str,
        i: usize,
        item: &Yaml,
        ids: &[String],
    ) -> Result<InputRef, Reported> {
        let pos = self
            .source
            .locations
            .value(&["stages", id, "inputs", &i.to_string()]);
        let Some(text) = item.as_str() else {
            self.error(
                pos,
                Some(id),
                "an input must be a stage id (string)".into(),
                None,
            );
            return Err(Reported);
        };
        let (stage, split) = match text.split_once('.') {
            Some((s, sp)) => (s, Some(sp.to_string())),
            None => (text, None),
        };
        if !ids.iter().any(|x| x == stage) {
            let hint = match did_you_mean(stage, ids.iter().map(String::as_str)) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("stages in this pipeline: {}", ids.join(", ")),
            };
            self.error(
                pos,
                Some(id),
                format!("input `{text}` names no stage of this pipeline"),
                Some(hint),
            );
            return Err(Reported);
        }
        Ok(InputRef {
            stage: stage.to_string(),
            split,
        })
    }

    /// `device:`, only for device stages; `None` when absent or `auto`.
    fn stage_device(
        &mut self,
        id: &str,
        map: &serde_yaml::Mapping,
        kind: &Kind,
    ) -> Result<Option<Device>, Reported> {
        let Some(d) = map.get("device") else {
            return Ok(None);
        };
        let pos = self.source.locations.value(&["stages", id, "device"]);
        match d.as_str().map(parse_device) {
            Some(Ok(_)) if !kind.uses_device => {
                self.error(
                    pos,
                    Some(id),
                    format!(
                        "`{}` stages run on the CPU; `device:` applies only to device stages",
                        kind.name
                    ),
                    Some("remove `device:` here (`cairn kinds` marks the device stages)".into()),
                );
                Err(Reported)
            }
            Some(Ok(dev)) => Ok(dev),
            _ => {
                self.error(
                    pos,
                    Some(id),
                    format!("unknown device {}", yaml_inline(d)),
                    Some("use `auto`, `cpu` or `cuda:N`".into()),
                );
                Err(Reported)
            }
        }
    }

    /// Every key but the engine's, with `${params.x}` substituted.
    fn substituted_params(
        &mut self,
        id: &str,
        map: &serde_yaml::Mapping,
    ) -> Result<Yaml, Reported> {
        let mut params = Yaml::Mapping(
            map.iter()
                .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str().unwrap_or_default()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        let before = self.errors.len();
        self.substitute(&mut params, &mut vec!["stages".into(), id.into()], id);
        if self.errors.len() > before {
            return Err(Reported);
        }
        Ok(params)
    }

    /// The params, typed by the kind (its defaults filled in).
    fn typed_params(&mut self, id: &str, kind: &Kind, params: &Yaml) -> Result<Parsed, Reported> {
        let json = serde_json::to_value(params).map_err(|e| {
            self.error(
                self.source.locations.key(&["stages", id]),
                Some(id),
                format!("params cannot be read: {e}"),
                None,
            );
            Reported
        })?;
        kind.parse(json).map_err(|e| {
            self.report_param_error(id, kind, &e);
            Reported
        })
    }

    /// A serde error, at the param it names: the unknown key itself, else its value.
    fn report_param_error(&mut self, id: &str, kind: &Kind, e: &ParamParseError) {
        let loc = &self.source.locations;
        let mut path = vec!["stages", id];
        path.extend(e.path.iter().map(String::as_str));
        let unknown = e.message.starts_with("unknown field");
        let pos = if unknown {
            // serde reports the unknown key's name in the message, not in the path.
            let field = e.message.split('`').nth(1).unwrap_or_default();
            let mut p = path.clone();
            if p.last() != Some(&field) {
                p.push(field);
            }
            loc.key(&p).or(loc.value_or_parent(&path))
        } else {
            loc.value_or_parent(&path)
        };
        let hint = unknown.then(|| {
            format!(
                "stage keys are `kind`, `inputs`, `device`, `description` and the params of `{}`",
                kind.name
            )
        });
        let field = if e.path.is_empty() || unknown {
            String::new()
        } else {
            format!("param `{}`: ", e.path.join("."))
        };
        self.error(pos, Some(id), format!("{field}{}", e.message), hint);
    }

    /// The files and models the stage reads, as its kind names them.
    fn stage_externals(
        &mut self,
        id: &str,
        parsed: &Parsed,
        env: &PrepareEnv,
    ) -> Result<Vec<External>, Reported> {
        parsed.externals(env).map_err(|e| {
            let (field, hint) = match &e {
                StageError::Param { field, hint, .. } => (field.as_str(), hint.clone()),
                _ => ("", None),
            };
            self.error(
                self.source
                    .locations
                    .value_or_parent(&field_path(id, field)),
                Some(id),
                e.to_string(),
                hint,
            );
            Reported
        })
    }

    /// Every external must exist; each one missing is reported.
    fn check_externals_exist(
        &mut self,
        id: &str,
        externals: &[External],
        env: &PrepareEnv,
    ) -> Result<(), Reported> {
        let mut result = Ok(());
        for ext in externals.iter().filter(|ext| !ext.path.exists()) {
            self.error(
                self.source.locations.value_or_parent(&field_path(id, &ext.field)),
                Some(id),
                format!("`{}` does not exist ({})", ext.shown, ext.path.display()),
                Some(format!(
                    "relative paths resolve against the pipeline root `{}`; run scripts/setup.sh to fetch data and models",
                    env.root.display()
                )),
            );
            result = Err(Reported);
        }
        result
    }
}

// `${params.x}` references.
impl Resolver<'_> {
    /// Replaces `${params.name}` in every string of `value`. A string that is exactly one
    /// reference takes the param's value with its type; otherwise the param is spliced in as text.
    fn substitute(&mut self, value: &mut Yaml, path: &mut Vec<String>, stage: &str) {
        if self.substituted > MAX_SUBSTITUTED {
            return; // reported once, where it happened
        }
        match value {
            Yaml::String(s) if s.contains("${") => {
                let budget = MAX_SUBSTITUTED - self.substituted;
                match expand(s, &self.source.raw.params, budget) {
                    Ok(v) => {
                        self.substituted += yaml_len(&v);
                        *value = v;
                    }
                    Err(why) => self.report_unexpanded(why, path, stage),
                }
            }
            Yaml::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    self.substitute(item, path, stage);
                    path.pop();
                }
            }
            Yaml::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    path.push(k.as_str().unwrap_or_default().to_string());
                    self.substitute(v, path, stage);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// At the string holding the reference.
    fn report_unexpanded(&mut self, why: Unexpanded, path: &[String], stage: &str) {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let pos = self.source.locations.value(&refs);
        match why {
            Unexpanded::TooLong(name) => {
                self.substituted = MAX_SUBSTITUTED + 1;
                self.error(
                    pos,
                    Some(stage),
                    format!(
                        "`${{params.{name}}}` makes the substituted params longer than {} MiB",
                        MAX_SUBSTITUTED >> 20
                    ),
                    Some("reference long params fewer times".into()),
                );
            }
            Unexpanded::Unknown(name) => {
                let hint = self.unknown_param_hint(&name);
                self.error(
                    pos,
                    Some(stage),
                    format!("unresolved reference `${{params.{name}}}`"),
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

/// Why a string's `${params.x}` references cannot be expanded.
#[derive(Debug, PartialEq)]
enum Unexpanded {
    /// No param has this name.
    Unknown(String),
    /// Expanding this param went past the budget.
    TooLong(String),
}

/// A value's size for [`MAX_SUBSTITUTED`]: string bytes, 1 per other node. Costs at most what it
/// returns, so the budget bounds the work too.
fn yaml_len(v: &Yaml) -> usize {
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

/// Expands references in one string, producing at most `budget` ([`yaml_len`]).
fn expand(s: &str, params: &serde_yaml::Mapping, budget: usize) -> Result<Yaml, Unexpanded> {
    let lookup = |name: &str| match params.get(name) {
        None => Err(Unexpanded::Unknown(name.to_string())),
        Some(v) if yaml_len(v) > budget => Err(Unexpanded::TooLong(name.to_string())),
        Some(v) => Ok(v.clone()),
    };
    let whole = s
        .strip_prefix("${params.")
        .and_then(|r| r.strip_suffix('}'));
    if let Some(name) = whole.filter(|n| !n.contains('}')) {
        return lookup(name);
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Unexpanded::Unknown(after.to_string()));
        };
        let reference = &after[..end];
        let name = reference.strip_prefix("params.").unwrap_or(reference);
        match lookup(name)? {
            Yaml::String(v) => out.push_str(&v),
            Yaml::Number(n) => out.push_str(&n.to_string()),
            Yaml::Bool(b) => out.push_str(&b.to_string()),
            _ => return Err(Unexpanded::Unknown(name.to_string())),
        }
        if out.len() > budget {
            return Err(Unexpanded::TooLong(name.to_string()));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Yaml::String(out))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The YAML path of a stage param named like `splits.train` or `ops.0`.
fn field_path<'a>(id: &'a str, field: &'a str) -> Vec<&'a str> {
    let mut path = vec!["stages", id];
    path.extend(field.split('.').filter(|s| !s.is_empty()));
    path
}

/// `pipelines/..` → `.` without touching the filesystem (so messages show short paths).
fn lexical_normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

fn known_kinds_hint() -> String {
    "`cairn kinds` lists the stage kinds".to_string()
}

fn yaml_inline(v: &Yaml) -> String {
    serde_yaml::to_string(v)
        .map(|s| format!("`{}`", s.trim_end()))
        .unwrap_or_else(|_| "value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_whole_and_embedded_references() {
        let params: serde_yaml::Mapping = serde_yaml::from_str("n: 64\nm: mini").unwrap();
        let expand = |s: &str| expand(s, &params, MAX_SUBSTITUTED);
        assert_eq!(expand("${params.n}"), Ok(Yaml::Number(64.into())));
        assert_eq!(
            expand("models/${params.m}-${params.n}"),
            Ok(Yaml::String("models/mini-64".into()))
        );
        assert_eq!(expand("${params.x}"), Err(Unexpanded::Unknown("x".into())));
    }

    #[test]
    fn many_references_to_a_long_param_are_refused_not_expanded_quadratically() {
        // Probing fuzz/pipeline with big inputs: a 133 KB file splicing a 100 KB param 3000
        // times took 930 MB; ten times the references would take ten times that.
        let long = "x".repeat(100_000);
        let refs = "${params.a}".repeat(3000);
        let text = format!(
            "name: p\nparams: {{a: {long}}}\nstages:\n  s:\n    kind: load\n    delimiter: \"{refs}\"\n"
        );
        let source = SourceFile::parse(Path::new("p.yaml"), &text).unwrap();
        let Err(d) = resolve(&source, true) else {
            panic!("resolved")
        };
        let d = d.to_string();
        assert!(
            d.contains("`${params.a}` makes the substituted params longer than 16 MiB")
                && d.contains("p.yaml:6:16"),
            "{d}"
        );
        // The same reference a few times is fine.
        let params: serde_yaml::Mapping = serde_yaml::from_str(&format!("a: {long}")).unwrap();
        assert!(expand(&"${params.a}".repeat(100), &params, MAX_SUBSTITUTED).is_ok());
        assert_eq!(
            expand(&"${params.a}".repeat(200), &params, MAX_SUBSTITUTED),
            Err(Unexpanded::TooLong("a".into()))
        );
    }
}
