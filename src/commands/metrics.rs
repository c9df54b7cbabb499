//! `cairn metrics` and `cairn params`: what the manifest records per stage, as a table
//! (stage × split × metric, or stage × param), and with `--diff REV` beside what the manifest
//! at a git revision records (DVC's `metrics diff` / `params diff`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use crate::commands::context::Context;
use crate::commands::revision::manifest_at;
use crate::commands::tabular::{self, Diff, Format, Key};
use crate::store::manifest::{Manifest, StageRecord};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn metrics pipelines/emotion.yaml
  cairn metrics pipelines/emotion.yaml --diff              # against the last commit's manifest
  cairn metrics pipelines/emotion.yaml --diff main~3 --md  # a Markdown table for a pull request
  cairn metrics pipelines/emotion.yaml --json | jq '.\"eval-finetune\"'")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    #[command(flatten)]
    view: View,
}

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn params pipelines/emotion.yaml
  cairn params pipelines/emotion.yaml --diff               # what changed since the last commit
  cairn params pipelines/emotion.yaml --diff v1.0 --json")]
pub struct ParamsArgs {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    #[command(flatten)]
    view: View,
}

#[derive(clap::Args)]
struct View {
    /// Compare with the manifest at this git revision (default HEAD); only changes unless --all.
    #[arg(long, value_name = "REV", num_args = 0..=1, default_missing_value = "HEAD")]
    diff: Option<String>,
    /// With --diff: also the values that did not change.
    #[arg(long, requires = "diff")]
    all: bool,
    /// JSON (without --diff: the manifest's nested values as they are recorded).
    #[arg(long, conflicts_with = "md")]
    json: bool,
    /// A Markdown table.
    #[arg(long)]
    md: bool,
}

impl View {
    fn format(&self) -> Format {
        match (self.json, self.md) {
            (true, _) => Format::Json,
            (_, true) => Format::Md,
            _ => Format::Table,
        }
    }
}

/// Which recorded values a command shows.
struct Recorded {
    /// The group column's name (`split` for metrics); `None` for params, which are ungrouped.
    group: Option<&'static str>,
    values: fn(&StageRecord) -> BTreeMap<String, Value>,
}

const METRICS: Recorded = Recorded {
    group: Some("split"),
    values: |r| r.metrics.clone(),
};

const PARAMS: Recorded = Recorded {
    group: None,
    values: |r| match &r.params {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    },
};

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    show(ctx, &args.pipeline, &args.view, &METRICS)
}

pub fn run_params(ctx: &Context, args: ParamsArgs) -> anyhow::Result<ExitCode> {
    show(ctx, &args.pipeline, &args.view, &PARAMS)
}

fn show(
    ctx: &Context,
    pipeline: &std::path::Path,
    view: &View,
    what: &Recorded,
) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(pipeline)?;
    let path = cache.manifest_path(&p.name);
    let manifest = Manifest::load(&path)?;
    let format = view.format();
    let group = what.group.unwrap_or("-");
    let Some(rev) = &view.diff else {
        let manifest = manifest
            .with_context(|| format!("no manifest for {}: run the pipeline first", p.name))?;
        if format == Format::Json {
            let nested: serde_json::Map<String, Value> = manifest
                .stages
                .iter()
                .map(|(id, r)| {
                    (
                        id.clone(),
                        serde_json::to_value((what.values)(r)).expect("json"),
                    )
                })
                .filter(|(_, v)| v.as_object().is_some_and(|m| !m.is_empty()))
                .collect();
            println!("{}", serde_json::to_string_pretty(&nested)?);
        } else {
            print!(
                "{}",
                tabular::render_values(&rows(Some(&manifest), what), group, format)
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let old = manifest_at(rev, &path)?;
    if old.is_none() {
        eprintln!(
            "note: {} is not in {rev}: every value shows as added",
            path.display()
        );
    }
    let diff = Diff::new(
        rev,
        &rows(old.as_ref(), what),
        &rows(manifest.as_ref(), what),
        view.all,
    );
    print!("{}", tabular::render_diff(&diff, group, format));
    Ok(ExitCode::SUCCESS)
}

/// Every stage's values as rows (none without a manifest).
fn rows(manifest: Option<&Manifest>, what: &Recorded) -> BTreeMap<Key, Value> {
    manifest
        .into_iter()
        .flat_map(|m| &m.stages)
        .flat_map(|(id, r)| tabular::flatten(id, &(what.values)(r), what.group.is_some()))
        .collect()
}
