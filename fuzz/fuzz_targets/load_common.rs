//! Shared by the `load_*` targets: the fuzz input becomes a split file, read by the real `load`
//! stage (`Stage::run`) with one of a few param sets, as a pipeline would run it.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use cairn_stages::kinds::load::{Load, LoadParams};
use cairn_stages::{Context, NoProgress, Stage};

/// One temp dir per fuzzing process: the pipeline root, holding the split file.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| tempfile::tempdir().expect("tempdir").keep())
}

/// Runs `load` on `data[1..]` written to `file`, with `variants[data[0] % len]` as params (YAML
/// flow mapping without `splits:`; it is added). Errors are fine; panics are what we look for.
pub fn run(file: &str, variants: &[&str], data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let yaml = variants[pick as usize % variants.len()];
    let yaml = format!("{{splits: {{train: {file}}}, {}", &yaml[1..]);
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("variant yaml");
    let params: LoadParams =
        serde_json::from_value(serde_json::to_value(value).expect("json")).expect("params");
    let root = root();
    std::fs::write(root.join(file), bytes).expect("write the split file");
    let cancelled = AtomicBool::new(false);
    let ctx = Context {
        stage: "load",
        root,
        inputs: &[],
        externals: &[],
        out_dir: root,
        device: cairn_stages::Device::Cpu,
        offline: true,
        progress: &NoProgress,
        cancelled: &cancelled,
    };
    let _ = Load::run(&params, &ctx);
}
