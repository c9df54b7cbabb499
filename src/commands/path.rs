//! `cairn path`: where a stage's cached output lies, so other tools read it in place
//! (`duckdb -c "select * from 'PATH'"`, `pd.read_parquet(PATH)`). Objects are stored as written,
//! Parquet tables included; only their names are digests.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::commands::context::Context;
use crate::commands::recorded;
use crate::store::cache::{FILE_PREFIX, split_of, table_output_name};
use crate::store::manifest::StageRecord;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn path pipelines/emotion.yaml hidden
  cairn path pipelines/emotion.yaml hidden --split validation
  cairn path pipelines/emotion.yaml umap --file projection.png
  cairn path pipelines/emotion.yaml finetune --all
  duckdb -c \"select label, count(*) from '$(cairn path pipelines/emotion.yaml load)' group by 1\"")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    /// The stage whose output to locate.
    stage: String,
    /// A table: this split's Parquet file. Default: `train` if the stage has it, else its only
    /// table.
    #[arg(long, conflicts_with_all = ["file", "all"])]
    split: Option<String>,
    /// A file the stage wrote (a figure, a report, a model file), by its name in `cairn export`.
    #[arg(long, conflicts_with = "all")]
    file: Option<String>,
    /// Every output, one `name<TAB>path` line each.
    #[arg(long)]
    all: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    let stage = args.stage.as_str();
    let Some(last) = recorded::last_result(&p, &cache, stage)? else {
        bail!(
            "stage `{stage}` has not run yet: `{}`",
            recorded::run_command(&p, stage)
        );
    };
    if let Some(s) = &last.not_fresh {
        // The path is still the recorded result's; say that it is not the pipeline's current one.
        eprintln!(
            "note: `{stage}` is {} ({}); this is its last recorded result",
            s.state.label(),
            s.reasons.join("; ")
        );
    }
    let chosen: Vec<(String, String)> = if args.all {
        last.record
            .outputs
            .iter()
            .map(|(name, o)| (shown_name(name), o.digest.clone()))
            .collect()
    } else {
        let name = chosen_output(&last.record, stage, &args)?;
        vec![(shown_name(&name), last.record.outputs[&name].digest.clone())]
    };
    for (name, digest) in chosen {
        let path = cache.verified_object_path(&digest).map_err(|_| {
            anyhow::anyhow!(
                "the cached output {name} of `{stage}` is missing or corrupt: `{}`",
                recorded::run_command(&p, stage)
            )
        })?;
        let path = std::path::absolute(&path).unwrap_or(path);
        match args.all {
            true => println!("{name}\t{}", path.display()),
            false => println!("{}", path.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The output `--split` / `--file` name (or the default table), else an error listing what
/// the stage has.
fn chosen_output(record: &StageRecord, stage: &str, args: &Args) -> anyhow::Result<String> {
    let splits: Vec<&str> = record.outputs.keys().filter_map(|k| split_of(k)).collect();
    let files: Vec<&str> = record
        .outputs
        .keys()
        .filter_map(|k| k.strip_prefix(FILE_PREFIX))
        .collect();
    let has = |list: &[&str]| match list.is_empty() {
        true => "none".to_string(),
        false => list.join(", "),
    };
    if let Some(file) = &args.file {
        if !files.contains(&file.as_str()) {
            bail!(
                "`{stage}` wrote no file `{file}`; its files: {}",
                has(&files)
            );
        }
        return Ok(format!("{FILE_PREFIX}{file}"));
    }
    let split = match &args.split {
        Some(s) if splits.contains(&s.as_str()) => s.as_str(),
        Some(s) => bail!("`{stage}` has no split `{s}`; its splits: {}", has(&splits)),
        None if splits.contains(&"train") => "train",
        None if splits.len() == 1 => splits[0],
        None if splits.is_empty() => bail!(
            "`{stage}` has no table; name one of its files with --file: {}",
            has(&files)
        ),
        None => bail!(
            "`{stage}` has several tables and none is `train`; pick one with --split: {}",
            has(&splits)
        ),
    };
    Ok(table_output_name(split))
}

/// An output's name as `cairn export` writes it: `train.parquet`, `umap.png`.
fn shown_name(output: &str) -> String {
    match (split_of(output), output.strip_prefix(FILE_PREFIX)) {
        (Some(split), _) => format!("{split}.parquet"),
        (None, Some(file)) => file.to_string(),
        (None, None) => output.to_string(),
    }
}
