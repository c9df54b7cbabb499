//! `cairn metrics`: the metrics the manifest records, per stage, as an indented outline or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use crate::commands::context::Context;
use crate::store::manifest::Manifest;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    let manifest = Manifest::load(&cache.manifest_path(&p.name))?
        .with_context(|| format!("no manifest for {}: run the pipeline first", p.name))?;
    let metrics: serde_json::Map<String, Value> = manifest
        .stages
        .iter()
        .filter(|(_, r)| !r.metrics.is_empty())
        .map(|(id, r)| (id.clone(), serde_json::to_value(&r.metrics).expect("json")))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
    } else {
        for (id, m) in &metrics {
            println!("{id}");
            print_outline(m, "  ");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `key: value` lines, nested objects indented; floats to 4 decimals.
fn print_outline(v: &Value, indent: &str) {
    if let Value::Object(map) = v {
        for (k, v) in map {
            match v {
                Value::Object(_) => {
                    println!("{indent}{k}:");
                    print_outline(v, &format!("{indent}  "));
                }
                Value::Number(n) => match n.as_f64() {
                    Some(f) if n.is_f64() => println!("{indent}{k}: {f:.4}"),
                    _ => println!("{indent}{k}: {n}"),
                },
                other => println!("{indent}{k}: {other}"),
            }
        }
    }
}
