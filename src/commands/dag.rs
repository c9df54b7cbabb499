//! `cairn dag`: the stage graph as text, Mermaid or Graphviz (the renderings are in `graph`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::commands::context::Context;
use crate::graph;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn dag pipelines/emotion.yaml
  cairn dag pipelines/ner-crosslingual.yaml --format dot | dot -Tsvg > dag.svg")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Mermaid,
    Dot,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let p = ctx.pipeline(&args.pipeline)?;
    print!(
        "{}",
        match args.format {
            Format::Text => graph::render_text(&p.stages, &p.dag),
            Format::Mermaid => graph::render_mermaid(&p.stages, &p.dag),
            Format::Dot => graph::render_dot(&p.stages, &p.dag, &p.name),
        }
    );
    Ok(ExitCode::SUCCESS)
}
