//! A pipeline's manifest as a git revision has it, for `metrics --diff` and `params --diff`:
//! manifests are checked in, so the last commit's results are one `git show` away.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::store::manifest::Manifest;

/// The manifest at `path` (a file in a git work tree) as revision `rev` has it; `None` when the
/// revision has no such file (the pipeline had not run when it was committed).
pub fn manifest_at(rev: &str, path: &Path) -> anyhow::Result<Option<Manifest>> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = path
        .parent()
        .filter(|d| d.is_dir())
        .with_context(|| format!("{}: no such directory", path.display()))?;
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .context("running git (is it installed?)")
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if !top.status.success() {
        bail!(
            "{} is not in a git work tree, so there is no revision to compare with",
            dir.display()
        );
    }
    let verify = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])?;
    if !verify.status.success() {
        bail!("`{rev}` is not a git revision here");
    }
    let top = std::fs::canonicalize(String::from_utf8_lossy(&top.stdout).trim())?;
    let full = std::fs::canonicalize(dir)?.join(path.file_name().unwrap_or_default());
    let rel = full.strip_prefix(&top).with_context(|| {
        format!(
            "{} is outside the work tree {}",
            full.display(),
            top.display()
        )
    })?;
    let rel = rel.to_string_lossy().replace('\\', "/");
    let shown = git(&["show", &format!("{rev}:{rel}")])?;
    if !shown.status.success() {
        return Ok(None); // Not in that revision.
    }
    let text = String::from_utf8(shown.stdout).context("the manifest is not UTF-8")?;
    Manifest::parse(&text, &path)
        .map(Some)
        .map_err(|why| anyhow::anyhow!("{rel} at {rev}: the manifest cannot be read: {why}"))
}
