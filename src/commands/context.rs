//! What every subcommand shares: the global options, checked once (the device, whether the
//! network may be used, where the cache is), and loading a pipeline with its cache.

use std::path::{Path, PathBuf};

use cairn_stages::Device;

use crate::spec::resolve::{Pipeline, parse_device};
use crate::store::cache::Cache;

/// The global options of `cairn`, resolved.
pub struct Context {
    /// `--cache-dir`; `None`: `cache/` under the pipeline's root.
    pub cache_dir: Option<PathBuf>,
    /// The device for device stages, `auto` already chosen.
    pub device: Device,
    /// `--offline` or `HF_HUB_OFFLINE`.
    pub offline: bool,
}

impl Context {
    /// Checks `--device` (every command does, so a typo never waits for the command that
    /// needs it) and reads `HF_HUB_OFFLINE`.
    pub fn new(cache_dir: Option<PathBuf>, device: &str, offline: bool) -> anyhow::Result<Context> {
        Ok(Context {
            offline: offline_requested(offline),
            device: choose_device(device)?,
            cache_dir,
        })
    }

    /// The pipeline file, resolved.
    pub fn pipeline(&self, file: &Path) -> anyhow::Result<Pipeline> {
        let mut p = Pipeline::load(file, self.offline)?;
        p.settle_devices(self.device);
        Ok(p)
    }

    /// The pipeline file, resolved, and the cache it uses.
    pub fn load(&self, file: &Path) -> anyhow::Result<(Pipeline, Cache)> {
        let p = self.pipeline(file)?;
        let cache = self.cache_under(&p.root);
        Ok((p, cache))
    }

    /// `--cache-dir`, else `cache/` under `root`.
    pub fn cache_under(&self, root: &Path) -> Cache {
        match &self.cache_dir {
            Some(d) => Cache::new(d),
            // `./cache` reads better as `cache` in messages.
            None if root == Path::new(".") => Cache::new(Path::new("cache")),
            None => Cache::new(&root.join("cache")),
        }
    }
}

fn offline_requested(cli_flag: bool) -> bool {
    cli_flag
        || std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The one place `auto` becomes a device: the first GPU when this build has CUDA and the driver
/// reports one, else the CPU.
fn choose_device(text: &str) -> anyhow::Result<Device> {
    let chosen = parse_device(text)
        .map_err(|e| anyhow::anyhow!("--device: {e} (use auto, cpu or cuda:N)"))?;
    Ok(chosen.unwrap_or_else(probe_device))
}

fn probe_device() -> Device {
    if !cairn_stages::cuda_compiled() {
        return Device::Cpu;
    }
    match cairn_stages::cuda_device_count() {
        Ok(n) if n > 0 => Device::Cuda(0),
        Ok(_) => {
            tracing::info!("--device auto: no CUDA device found; device stages run on the CPU");
            Device::Cpu
        }
        Err(e) => {
            tracing::info!("--device auto: CUDA unusable ({e}); device stages run on the CPU");
            Device::Cpu
        }
    }
}
