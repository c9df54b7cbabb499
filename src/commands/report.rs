//! `cairn report`: one self-contained HTML page of a pipeline's recorded results, what a
//! notebook showed inline: the description, the DAG, a table of stages, and per stage its
//! metrics, figures and text reports. Inline CSS and images (base64), no script, no network.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;

use crate::commands::context::Context;
use crate::commands::status::{self, StageStatus, State};
use crate::commands::tabular;
use crate::exec::report::human_duration;
use crate::graph::{self, xml_escape as esc};
use crate::spec::resolve::Pipeline;
use crate::store::cache::{Cache, FILE_PREFIX, split_of, table_output_name};
use crate::store::manifest::{Manifest, StageRecord};

/// Text outputs larger than this are cut in the page (the whole file is in the cache).
const MAX_TEXT: usize = 24 * 1024;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn report pipelines/emotion.yaml                 # writes emotion.report.html here
  cairn report pipelines/emotion.yaml -o /tmp/emotion.html")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    /// Where to write the page. Default: `<pipeline name>.report.html` in this directory.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    let manifest = Manifest::load(&cache.manifest_path(&p.name))?.unwrap_or_default();
    let statuses = status::status(&p, &cache, &vec![true; p.stages.len()], false)?;
    let html = render(&p, &cache, &manifest, &statuses);
    let out = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.report.html", p.name)));
    crate::store::atomic::write_atomic(&out, html.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    // The atomic write's temporary file is private; the page is the user's, to share.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644))?;
    }
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The page.
pub fn render(
    p: &Pipeline,
    cache: &Cache,
    manifest: &Manifest,
    statuses: &[StageStatus],
) -> String {
    let state: BTreeMap<&str, &StageStatus> =
        statuses.iter().map(|s| (s.stage.as_str(), s)).collect();
    let class_of = |i: usize| {
        let s = state
            .get(p.stages[i].id.as_str())
            .map_or(State::NeverRun, |s| s.state);
        css_class(s).to_string()
    };
    let mut html = String::new();
    let title = format!("cairn report: {}", p.name);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&p.name)
    );
    if !p.description.is_empty() {
        let _ = writeln!(html, "<p class=\"description\">{}</p>", esc(&p.description));
    }
    let _ = writeln!(
        html,
        "<p class=\"meta\">{} stages · pipeline file {} · manifest of cairn {}</p>",
        p.stages.len(),
        esc(&p.file.display().to_string()),
        esc(&manifest.cairn_version)
    );
    html.push_str("<h2>Stages</h2>\n<div class=\"dag-box\">");
    html.push_str(&graph::render_svg(&p.stages, &p.dag, &class_of));
    html.push_str("</div>\n");
    html.push_str(&stage_table(p, manifest, &state));
    for i in p.dag.topological_order() {
        let id = p.stages[i].id.as_str();
        html.push_str(&stage_section(
            p,
            i,
            cache,
            manifest.stages.get(id),
            state.get(id).copied(),
        ));
    }
    html.push_str("</body></html>\n");
    html
}

fn css_class(state: State) -> &'static str {
    match state {
        State::Fresh => "fresh",
        State::Stale => "stale",
        State::NeverRun => "never",
        State::OutputMissing | State::OutputCorrupt => "damaged",
    }
}

/// One row per stage: status, kind, wall time, rows written, fingerprint prefix, inputs.
fn stage_table(p: &Pipeline, manifest: &Manifest, state: &BTreeMap<&str, &StageStatus>) -> String {
    let mut html = String::from(
        "<table class=\"stages\"><thead><tr><th>stage</th><th>kind</th><th>status</th>\
         <th>wall time</th><th>rows</th><th>fingerprint</th><th>inputs</th></tr></thead><tbody>\n",
    );
    for i in p.dag.topological_order() {
        let s = &p.stages[i];
        let record = manifest.stages.get(&s.id);
        let st = state
            .get(s.id.as_str())
            .map_or(State::NeverRun, |s| s.state);
        let rows: u64 = record.map_or(0, |r| {
            r.outputs
                .iter()
                .filter(|(k, _)| split_of(k).is_some())
                .filter_map(|(_, o)| o.rows)
                .sum()
        });
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#stage-{id}\">{id}</a></td><td>{kind}</td>\
             <td><span class=\"badge {class}\">{label}</span></td><td class=\"num\">{wall}</td>\
             <td class=\"num\">{rows}</td><td><code>{fp}</code></td><td>{inputs}</td></tr>",
            id = esc(&s.id),
            kind = esc(s.kind.name),
            class = css_class(st),
            label = st.label(),
            wall = record.map_or("-".into(), |r| human_duration(r.wall_time_s)),
            rows = if rows > 0 {
                rows.to_string()
            } else {
                "-".into()
            },
            fp = record.map_or("-".into(), |r| esc(
                &r.fingerprint[..12.min(r.fingerprint.len())]
            )),
            inputs = input_links(p, i),
        );
    }
    html.push_str("</tbody></table>\n");
    html
}

fn input_links(p: &Pipeline, i: usize) -> String {
    p.stages[i]
        .inputs
        .iter()
        .map(|input| {
            format!(
                "<a href=\"#stage-{}\">{}</a>",
                esc(&input.stage),
                esc(&input.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stage's section: what it is, why it is not fresh, its metrics, figures and text outputs.
fn stage_section(
    p: &Pipeline,
    i: usize,
    cache: &Cache,
    record: Option<&StageRecord>,
    status: Option<&StageStatus>,
) -> String {
    let s = &p.stages[i];
    let mut html = format!(
        "<section id=\"stage-{id}\"><h2>{id} <small>{kind}</small></h2>\n",
        id = esc(&s.id),
        kind = esc(s.kind.name)
    );
    let inputs = input_links(p, i);
    if !inputs.is_empty() {
        let _ = writeln!(html, "<p>inputs: {inputs}</p>");
    }
    if let Some(st) = status.filter(|st| st.state != State::Fresh) {
        let _ = writeln!(
            html,
            "<p class=\"note\">{}{}{}</p>",
            st.state.label(),
            if st.reasons.is_empty() { "" } else { ": " },
            esc(&st.reasons.join("; "))
        );
    }
    let Some(record) = record else {
        html.push_str("<p>No recorded result yet.</p></section>\n");
        return html;
    };
    if !record.metrics.is_empty() {
        let rows = tabular::flatten(&s.id, &record.metrics, true);
        html.push_str("<h3>Metrics</h3>\n<table class=\"metrics\"><thead><tr><th>split</th><th>metric</th><th>value</th></tr></thead><tbody>\n");
        for ((_, split, name), value) in &rows {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(split),
                esc(name),
                esc(&tabular::shown(Some(value)))
            );
        }
        html.push_str("</tbody></table>\n");
    }
    let tables: Vec<String> = record
        .outputs
        .iter()
        .filter_map(|(k, o)| {
            split_of(k).map(|split| format!("{split} ({} rows)", o.rows.unwrap_or(0)))
        })
        .collect();
    if !tables.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"meta\">tables: {} · read one in place with <code>cairn path {} {} --split NAME</code></p>",
            esc(&tables.join(", ")),
            esc(&p.file.display().to_string()),
            esc(&s.id)
        );
    }
    for (name, out) in &record.outputs {
        let Some(file) = name.strip_prefix(FILE_PREFIX) else {
            continue;
        };
        html.push_str(&file_block(cache, file, &out.digest));
    }
    if let Some(draw) = s.kind.figures {
        html.push_str(&drawn_figures(draw, cache, record));
    }
    html.push_str("</section>\n");
    html
}

/// The figures the stage's kind draws from its cached tables (its `FIGURES`).
fn drawn_figures(
    draw: cairn_stages::api::FiguresFn,
    cache: &Cache,
    record: &StageRecord,
) -> String {
    let table = |name: &str| {
        let out = record.outputs.get(&table_output_name(name))?;
        let bytes = cache.read_verified(&out.digest).ok()?;
        crate::store::tables::from_parquet(bytes).ok()
    };
    match draw(&table) {
        Ok(figures) => figures
            .iter()
            .map(|(name, png)| figure(name, "image/png", png))
            .collect(),
        Err(e) => format!(
            "<p class=\"note\">figures could not be drawn: {}</p>\n",
            esc(&e.to_string())
        ),
    }
}

fn figure(name: &str, mime: &str, bytes: &[u8]) -> String {
    format!(
        "<figure><img alt=\"{name}\" src=\"data:{mime};base64,{data}\"><figcaption>{name}</figcaption></figure>\n",
        name = esc(name),
        data = base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A figure inline, a text report in a block, other files (model weights) by name only.
fn file_block(cache: &Cache, file: &str, digest: &str) -> String {
    let extension = Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let shown_as = match extension {
        "png" | "svg" => "figure",
        "md" | "txt" | "csv" | "tsv" => "text",
        _ => return String::new(),
    };
    let Ok(bytes) = cache.read_verified(digest) else {
        return format!(
            "<p class=\"note\">{} is missing from the cache</p>\n",
            esc(file)
        );
    };
    match shown_as {
        "figure" => {
            let mime = if extension == "png" {
                "image/png"
            } else {
                "image/svg+xml"
            };
            figure(file, mime, &bytes)
        }
        _ => {
            let text = String::from_utf8_lossy(&bytes);
            let cut = text.char_indices().nth(MAX_TEXT).map(|(at, _)| at);
            let (shown, more) = match cut {
                Some(at) => (&text[..at], "\n…"),
                None => (&text[..], ""),
            };
            format!(
                "<details open><summary>{}</summary><pre>{}{more}</pre></details>\n",
                esc(file),
                esc(shown)
            )
        }
    }
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330;line-height:1.45}\
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d8dce4;padding-bottom:.2rem;margin-top:2.2rem}\
h2 small{font-weight:normal;color:#667085;font-size:.7em}\
.description{font-size:1.1rem}.meta{color:#667085;font-size:.9rem}.note{color:#9a5b00}\
table{border-collapse:collapse;margin:.8rem 0;font-size:.92rem}th,td{border-bottom:1px solid #e4e7ec;padding:.25rem .7rem;text-align:left}\
td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.85em}\
table.stages th,table.stages td{white-space:nowrap}\
.badge{border-radius:.6rem;padding:.05rem .5rem;font-size:.8rem}\
.badge.fresh{background:#dcfae6}.badge.stale{background:#fef0c7}.badge.never{background:#eaecf0}.badge.damaged{background:#fee4e2}\
.dag-box{overflow:auto;border:1px solid #e4e7ec;border-radius:6px;padding:.5rem;max-height:40rem}\
svg.dag text{font:12px system-ui,sans-serif;fill:#1d2330}svg.dag text.kind{fill:#667085;font-size:10px}\
svg.dag rect{stroke:#98a2b3;fill:#f9fafb}svg.dag .fresh rect{fill:#ecfdf3;stroke:#32d583}\
svg.dag .stale rect{fill:#fffaeb;stroke:#fdb022}svg.dag .damaged rect{fill:#fef3f2;stroke:#f97066}\
svg.dag path.edge{fill:none;stroke:#98a2b3;stroke-width:1.2}svg.dag marker path{fill:#98a2b3}\
figure{margin:1rem 0}img{max-width:100%;border:1px solid #e4e7ec}figcaption{color:#667085;font-size:.85rem}\
pre{background:#f6f8fa;padding:.7rem;overflow:auto;font-size:.82rem;max-height:30rem}";
