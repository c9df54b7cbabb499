//! Crash-safe file writes: a temp file in the destination's directory, fsync, rename. A crash
//! leaves the old file or the new one, never half of one.

use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_via(path.parent().unwrap_or(Path::new(".")), path, bytes)
}

/// As [`write_atomic`], with the temp file in `scratch` (same filesystem), so a crash leaves
/// debris only there, never beside finished files.
pub fn write_atomic_via(scratch: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    fs_err::create_dir_all(scratch)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(scratch)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Moves a finished file into place atomically (same filesystem), after syncing it.
pub fn persist_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    fs_err::File::open(from)?.sync_all()?;
    fs_err::rename(from, to)?;
    sync_dir(dir);
    Ok(())
}

/// Makes the rename itself durable; best effort (not every filesystem allows it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
