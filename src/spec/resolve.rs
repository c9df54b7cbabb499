//! From the pipeline file as written to a checked pipeline: sweeps expanded into their cells
//! (`sweep`), `${params.x}` and `${matrix.x}` substituted (`substitute`), each stage's kind
//! found and its params typed, its inputs checked against what the kind takes, as a list or by
//! name (`inputs`), external files checked, the DAG built. Every problem is collected and
//! reported with its file:line:col and stage id.

mod inputs;
mod substitute;
mod sweep;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_stages::registry::{self, Kind, ParamParseError, Parsed};
use cairn_stages::{Device, External, PrepareEnv, StageError};
use serde_yaml::Value as Yaml;

use crate::graph::Dag;
use crate::spec::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::spec::yaml::{Pos, SourceFile};

use self::sweep::{Instance, Names};

/// Keys of a stage mapping that belong to the engine; every other key is a param of the kind.
const ENGINE_KEYS: &[&str] = &["kind", "inputs", "device", "description", "matrix"];

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
    /// The sweep it is a cell of; `None` for a stage written out.
    pub sweep: Option<Cell>,
}

/// One cell of a sweep (`matrix:`): a stage of its own, with its own fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The id the sweep is written under (`ft`); in inputs and `--target` it names every cell.
    pub template: String,
    /// The cell's value of each variable, as its id spells it (`lang: de`, `n: 250`).
    pub values: BTreeMap<String, String>,
}

/// An input: `stage` or `stage.split`, in a list or under a named input (`model: stage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRef {
    pub stage: String,
    pub split: Option<String>,
    /// The named input it fills, for kinds that name their inputs; `None` in a list.
    pub slot: Option<&'static str>,
    /// The upstream stage's sweep values when it is a cell; empty otherwise.
    pub matrix: BTreeMap<String, String>,
}

/// `stage`, `stage.split`, and for a named input `slot=stage.split`.
impl std::fmt::Display for InputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(slot) = self.slot {
            write!(f, "{slot}=")?;
        }
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

    /// The stages a name stands for: the stage with that id, or every cell of the sweep
    /// written under it, in expansion order. Empty when it names nothing.
    pub fn named(&self, name: &str) -> Vec<usize> {
        match self.index_of(name) {
            Some(i) => vec![i],
            None => (0..self.stages.len())
                .filter(|&i| {
                    let sweep = self.stages[i].sweep.as_ref();
                    sweep.is_some_and(|c| c.template == name)
                })
                .collect(),
        }
    }

    /// The message for a stage id the pipeline does not have: the closest id when one is close,
    /// else the ids.
    pub fn unknown_stage(&self, name: &str) -> String {
        let ids = self.stages.iter().map(|s| s.id.as_str());
        let help = match crate::spec::diagnostic::did_you_mean(name, ids.clone()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("its stages: {}", ids.collect::<Vec<_>>().join(", ")),
        };
        format!("`{name}` is not a stage of {}; {help}", self.file.display())
    }

    /// Gives each device stage without a `device:` of its own the run's device, so that its
    /// fingerprint tells a GPU's result from the CPU's.
    pub fn settle_devices(&mut self, run_device: Device) {
        for stage in self.stages.iter_mut().filter(|s| s.kind.uses_device) {
            stage.device.get_or_insert(run_device);
        }
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
    /// What `${params.x}` and `${matrix.x}` references have produced so far, in
    /// [`substitute::yaml_len`] units.
    substituted: usize,
}

/// A problem was recorded in [`Resolver::errors`]; the caller stops, or checks on to report more.
struct Reported;

/// The most that `${params.x}` and `${matrix.x}` references may produce in one pipeline.
/// Without a cap, a short file referencing a long param many times makes the resolved params
/// quadratically large.
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
        return Err(Diagnostics(distinct(r.errors)));
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

    /// Every stage that resolves, in declaration order, a sweep's cells in its place; the
    /// others are reported.
    fn stages(&mut self, root: &Path, offline: bool) -> Vec<StageSpec> {
        if self.source.raw.stages.is_empty() {
            self.error(
                self.source.locations.key(&["stages"]),
                None,
                "the pipeline has no stages".into(),
                None,
            );
        }
        let (instances, names) = self.instances();
        let env = PrepareEnv { root, offline };
        instances
            .iter()
            .filter_map(|at| self.stage(at, &names, &env))
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
impl<'a> Resolver<'a> {
    /// One stage, step by step. A wrong id, shape, kind or params ends its checks; wrong
    /// inputs, a wrong device or a missing file are reported and the checks go on, so one
    /// `cairn` names them all.
    fn stage(&mut self, at: &Instance<'a>, names: &Names, env: &PrepareEnv) -> Option<StageSpec> {
        let map = self.stage_mapping(at).ok()?;
        let kind = self.stage_kind(at, map).ok()?;
        let inputs = self.stage_inputs(at, map, names, kind);
        let device = self.stage_device(at, map, kind);
        let params = self.substituted_params(at, map).ok()?;
        let parsed = self.typed_params(at, kind, &params).ok()?;
        let externals = self.stage_externals(at, &parsed, env).ok()?;
        let present = self.check_externals_exist(at, &externals, env);
        let (Ok(inputs), Ok(device), Ok(())) = (inputs, device, present) else {
            return None;
        };
        Some(StageSpec {
            id: at.id.clone(),
            kind,
            params: parsed.canonical.clone(),
            parsed,
            inputs,
            externals,
            device,
            pos: self.source.locations.key(&["stages", &at.key]),
            sweep: at.cell(),
        })
    }

    /// A plain id, naming a mapping.
    fn stage_mapping(&mut self, at: &Instance<'a>) -> Result<&'a serde_yaml::Mapping, Reported> {
        let (id, loc) = (at.id.as_str(), &self.source.locations);
        if !valid_id(id) {
            self.error(
                loc.key(&["stages", &at.key]),
                Some(id),
                format!("stage id `{id}` is not a plain name"),
                Some(
                    "use letters, digits, `-` and `_` (a `.` separates a stage from a split in inputs)"
                        .into(),
                ),
            );
            return Err(Reported);
        }
        at.value.as_mapping().ok_or_else(|| {
            self.error(
                loc.value(&["stages", &at.key]),
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
        at: &Instance,
        map: &serde_yaml::Mapping,
    ) -> Result<&'static Kind, Reported> {
        let (id, loc) = (Some(at.id.as_str()), &self.source.locations);
        let Some(kind_value) = map.get("kind") else {
            self.error(
                loc.key(&["stages", &at.key]),
                id,
                "the stage has no `kind:`".into(),
                Some(known_kinds_hint()),
            );
            return Err(Reported);
        };
        let pos = loc.value(&["stages", &at.key, "kind"]);
        let Some(name) = kind_value.as_str() else {
            self.error(
                pos,
                id,
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
            self.error(pos, id, format!("unknown stage kind `{name}`"), Some(hint));
            Reported
        })
    }

    /// `device:`, only for device stages; `None` when absent or `auto`.
    fn stage_device(
        &mut self,
        at: &Instance,
        map: &serde_yaml::Mapping,
        kind: &Kind,
    ) -> Result<Option<Device>, Reported> {
        let Some(d) = map.get("device") else {
            return Ok(None);
        };
        let pos = self.source.locations.value(&["stages", &at.key, "device"]);
        match d.as_str().map(parse_device) {
            Some(Ok(_)) if !kind.uses_device => {
                self.error(
                    pos,
                    Some(&at.id),
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
                    Some(&at.id),
                    format!("unknown device {}", yaml_inline(d)),
                    Some("use `auto`, `cpu` or `cuda:N`".into()),
                );
                Err(Reported)
            }
        }
    }

    /// Every key but the engine's, with `${params.x}` and `${matrix.x}` substituted.
    fn substituted_params(
        &mut self,
        at: &Instance,
        map: &serde_yaml::Mapping,
    ) -> Result<Yaml, Reported> {
        let mut params = Yaml::Mapping(
            map.iter()
                .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str().unwrap_or_default()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        let before = self.errors.len();
        self.substitute(&mut params, &mut vec!["stages".into(), at.key.clone()], at);
        if self.errors.len() > before {
            return Err(Reported);
        }
        Ok(params)
    }

    /// The params, typed by the kind (its defaults filled in).
    fn typed_params(
        &mut self,
        at: &Instance,
        kind: &Kind,
        params: &Yaml,
    ) -> Result<Parsed, Reported> {
        let json = serde_json::to_value(params).map_err(|e| {
            self.error(
                self.source.locations.key(&["stages", &at.key]),
                Some(&at.id),
                format!("params cannot be read: {e}"),
                None,
            );
            Reported
        })?;
        kind.parse(json).map_err(|e| {
            self.report_param_error(at, kind, &e);
            Reported
        })
    }

    /// A serde error, at the param it names: the unknown key itself, else its value.
    fn report_param_error(&mut self, at: &Instance, kind: &Kind, e: &ParamParseError) {
        let loc = &self.source.locations;
        let mut path = vec!["stages", at.key.as_str()];
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
                "stage keys are `kind`, `inputs`, `matrix`, `device`, `description` and the params of `{}`",
                kind.name
            )
        });
        let field = if e.path.is_empty() || unknown {
            String::new()
        } else {
            format!("param `{}`: ", e.path.join("."))
        };
        self.error(pos, Some(&at.id), format!("{field}{}", e.message), hint);
    }

    /// The files and models the stage reads, as its kind names them.
    fn stage_externals(
        &mut self,
        at: &Instance,
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
                    .value_or_parent(&field_path(&at.key, field)),
                Some(&at.id),
                e.to_string(),
                hint,
            );
            Reported
        })
    }

    /// Every external must exist; each one missing is reported.
    fn check_externals_exist(
        &mut self,
        at: &Instance,
        externals: &[External],
        env: &PrepareEnv,
    ) -> Result<(), Reported> {
        let mut result = Ok(());
        for ext in externals.iter().filter(|ext| !ext.path.exists()) {
            self.error(
                self.source.locations.value_or_parent(&field_path(&at.key, &ext.field)),
                Some(&at.id),
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

/// The errors, each reported once: a sweep's cells share their YAML, so one mistake there
/// would otherwise be reported for every cell.
fn distinct(errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = std::collections::HashSet::new();
    errors
        .into_iter()
        .filter(|d| seen.insert((d.pos.map(|p| (p.line, p.col)), d.message.clone())))
        .collect()
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
    use super::substitute::{Unexpanded, expand};
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
