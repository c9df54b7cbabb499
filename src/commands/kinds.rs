//! `cairn kinds`: the stage kinds the registry holds, one per line; with `--markdown`, the
//! README's table of them, so the README is generated from the registry rather than kept by hand
//! (tests/readme.rs fails when the two differ).

use std::process::ExitCode;

use cairn_stages::Arity;
use cairn_stages::registry::{Kind, user_kinds};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn kinds
  cairn kinds --markdown")]
pub struct Args {
    /// Print the README's table of stage kinds (Markdown) instead.
    #[arg(long)]
    markdown: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.markdown {
        print!("{}", markdown_table());
    } else {
        for k in user_kinds() {
            let device = if k.uses_device { " [device]" } else { "" };
            println!("{:16} v{}  {}{device}", k.name, k.version, k.summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `| kind | inputs | what it computes |`, one row per kind a user's build has.
pub fn markdown_table() -> String {
    let mut out = String::from("| kind | inputs | what it computes |\n|---|---|---|\n");
    for k in user_kinds() {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            kind_cell(k),
            inputs_cell(k),
            k.summary.replace('|', "\\|")
        ));
    }
    out
}

/// `` `finetune` (device) ``: device stages run on the device queue, the others on the CPU.
fn kind_cell(k: &Kind) -> String {
    if k.uses_device {
        format!("`{}` (device)", k.name)
    } else {
        format!("`{}`", k.name)
    }
}

/// `one`, `at least 2`, or for a kind with named inputs each name and what it takes, e.g.
/// `model: one (finetune); data: at least 1`.
fn inputs_cell(k: &Kind) -> String {
    if k.slots.is_empty() {
        return arity_words(k.inputs);
    }
    let slots: Vec<String> = k
        .slots
        .iter()
        .map(|s| match s.kinds {
            [] => format!("`{}`: {}", s.name, arity_words(s.arity)),
            kinds => format!(
                "`{}`: {} ({})",
                s.name,
                arity_words(s.arity),
                kinds.join(", ")
            ),
        })
        .collect();
    slots.join("; ")
}

fn arity_words(arity: Arity) -> String {
    match arity {
        Arity::None => "none".into(),
        Arity::One => "one".into(),
        Arity::AtLeast(n) => format!("at least {n}"),
        Arity::Range(lo, hi) => format!("{lo} to {hi}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_with_named_inputs_lists_each_name_with_its_count_and_kinds() {
        let join = cairn_stages::registry::lookup("test-join").expect("test kinds are built");
        assert_eq!(
            inputs_cell(join),
            "`left`: one (test-source); `right`: at least 1; `bias`: 0 to 1"
        );
        let load = cairn_stages::registry::lookup("load").unwrap();
        assert_eq!(inputs_cell(load), "none");
    }
}
