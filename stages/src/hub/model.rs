//! Model references and Hugging Face Hub access.
//!
//! A `MODEL` param names either a local directory (relative to the pipeline root) or a Hub id
//! (`owner/name`, optionally `owner/name@revision`). Hub ids resolve through the Hugging Face
//! hub cache, laid out as `huggingface_hub` and the `hf-hub` crate write it
//! (`models--owner--name/{refs,snapshots,blobs}`), so a model installed by `scripts/setup.sh`,
//! by Python or by an earlier download is found without the network. Files are downloaded only
//! when allowed: never with `--offline` or `HF_HUB_OFFLINE=1` (the engine passes that down as
//! `offline`).
//!
//! The cache directory follows the same order as `huggingface_hub`: `HF_HUB_CACHE`, else
//! `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub`.
//!
//! A resolved model becomes an [`External`] with `content_only: true`: the fingerprint covers
//! the digest of the files the stage reads (its required and optional files), never the name
//! the pipeline used nor the snapshot's other files (a README).

use std::path::{Path, PathBuf};

use crate::api::{External, StageError};

/// The hint every "model/data not found" error carries.
pub const SETUP_HINT: &str = "run scripts/setup.sh to install the model into the Hugging Face cache, or go online (drop --offline / HF_HUB_OFFLINE=1) to download it";

/// The Hugging Face hub cache directory this process uses.
pub fn hub_cache_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return p;
    }
    if let Some(home) = var("HF_HOME") {
        return home.join("hub");
    }
    let cache =
        var("XDG_CACHE_HOME").unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache"));
    cache.join("huggingface").join("hub")
}

/// What kind of Hub repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

/// A Hub repository at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRepo {
    pub kind: RepoKind,
    /// `owner/name`.
    pub id: String,
    /// A branch, tag or commit hash. Default `main`.
    pub revision: String,
}

fn hub_id_like(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(s.split_once('/'), Some((owner, name)) if part(owner) && part(name))
}

impl HubRepo {
    /// Parses `owner/name` or `owner/name@revision`.
    pub fn parse(kind: RepoKind, text: &str) -> Option<HubRepo> {
        let (id, revision) = match text.split_once('@') {
            Some((id, rev)) if !rev.is_empty() => (id, rev),
            Some(_) => return None,
            None => (text, "main"),
        };
        hub_id_like(id).then(|| HubRepo {
            kind,
            id: id.to_string(),
            revision: revision.to_string(),
        })
    }

    fn hf_repo(&self) -> hf_hub::Repo {
        let kind = match self.kind {
            RepoKind::Model => hf_hub::RepoType::Model,
            RepoKind::Dataset => hf_hub::RepoType::Dataset,
        };
        hf_hub::Repo::with_revision(self.id.clone(), kind, self.revision.clone())
    }

    /// `models--owner--name` under the cache.
    pub fn cache_dir(&self, cache: &Path) -> PathBuf {
        cache.join(self.hf_repo().folder_name())
    }

    /// The snapshot directory the revision points to in the cache, if there is one.
    pub fn cached_snapshot(&self, cache: &Path) -> Option<PathBuf> {
        let dir = self.cache_dir(cache);
        let is_hash =
            self.revision.len() == 40 && self.revision.chars().all(|c| c.is_ascii_hexdigit());
        let commit = if is_hash {
            self.revision.clone()
        } else {
            std::fs::read_to_string(dir.join("refs").join(&self.revision))
                .ok()?
                .trim()
                .to_string()
        };
        let snap = dir.join("snapshots").join(commit);
        snap.is_dir().then_some(snap)
    }

    fn describe(&self) -> String {
        let what = match self.kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        if self.revision == "main" {
            format!("{what} `{}`", self.id)
        } else {
            format!("{what} `{}@{}`", self.id, self.revision)
        }
    }

    fn api(&self, cache: &Path) -> Result<hf_hub::api::sync::ApiRepo, String> {
        let mut builder =
            hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(cache.to_path_buf()))
                .with_progress(false)
                .with_retries(2);
        if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
            builder = builder.with_endpoint(endpoint);
        }
        if let Ok(token) = std::env::var("HF_TOKEN") {
            builder = builder.with_token(Some(token));
        }
        let api = builder.build().map_err(|e| e.to_string())?;
        Ok(api.repo(self.hf_repo()))
    }

    /// The snapshot directory holding every file of `required`. When some are missing and
    /// `offline` is false, downloads them together with whichever of `optional` the repo has;
    /// a cache that has every required file is used as it is, without the network.
    pub fn fetch(
        &self,
        required: &[&str],
        optional: &[&str],
        offline: bool,
        field: &str,
    ) -> Result<PathBuf, StageError> {
        let cache = hub_cache_dir();
        let snapshot = self.cached_snapshot(&cache);
        let present = |f: &str| snapshot.as_ref().is_some_and(|s| s.join(f).is_file());
        let missing: Vec<&str> = required.iter().copied().filter(|f| !present(f)).collect();
        if offline {
            return match snapshot {
                Some(s) if missing.is_empty() => Ok(s),
                _ => Err(self.missing_error(&cache, &missing, field, "offline")),
            };
        }
        if let (Some(s), true) = (&snapshot, missing.is_empty()) {
            // Complete enough: no network round trip for optional files on every run.
            return Ok(s.clone());
        }
        let wanted: Vec<&str> = missing
            .iter()
            .copied()
            .chain(optional.iter().copied().filter(|f| !present(f)))
            .collect();
        let repo = self
            .api(&cache)
            .map_err(|e| self.download_error(&cache, &missing, field, &e))?;
        let mut snap = snapshot;
        for f in wanted {
            match repo.get(f) {
                Ok(path) => {
                    // `snapshots/<commit>/<f>`: the snapshot is `f`'s ancestor.
                    let depth = Path::new(f).components().count();
                    snap = path.ancestors().nth(depth).map(Path::to_path_buf);
                }
                Err(e) if missing.contains(&f) => {
                    return Err(self.download_error(&cache, &missing, field, &e.to_string()));
                }
                Err(_) => {} // an optional file the repo does not have
            }
        }
        snap.ok_or_else(|| self.missing_error(&cache, &missing, field, "download"))
    }

    /// Every file of the repo at the revision: from the Hub when online, else what the cached
    /// snapshot holds.
    pub fn list_files(&self, offline: bool, field: &str) -> Result<Vec<String>, StageError> {
        let cache = hub_cache_dir();
        if !offline {
            let repo = self
                .api(&cache)
                .map_err(|e| self.download_error(&cache, &[], field, &e))?;
            match repo.info() {
                Ok(info) => return Ok(info.siblings.into_iter().map(|s| s.rfilename).collect()),
                Err(e) => return Err(self.download_error(&cache, &[], field, &e.to_string())),
            }
        }
        let Some(snap) = self.cached_snapshot(&cache) else {
            return Err(self.missing_error(&cache, &[], field, "offline"));
        };
        let mut files = Vec::new();
        walk(&snap, &snap, &mut files)?;
        files.sort();
        Ok(files)
    }

    fn missing_error(&self, cache: &Path, missing: &[&str], field: &str, why: &str) -> StageError {
        let dir = self.cache_dir(cache);
        let files = if missing.is_empty() {
            String::new()
        } else {
            format!("; missing {}", missing.join(", "))
        };
        let why = if why == "offline" {
            " and downloads are off (--offline / HF_HUB_OFFLINE=1)"
        } else {
            ""
        };
        StageError::param(
            field,
            format!(
                "{} is not in the Hugging Face cache ({}{files}){why}",
                self.describe(),
                dir.display()
            ),
            Some(SETUP_HINT.into()),
        )
    }

    fn download_error(&self, cache: &Path, missing: &[&str], field: &str, err: &str) -> StageError {
        let files = if missing.is_empty() {
            String::new()
        } else {
            format!(" (missing {})", missing.join(", "))
        };
        StageError::param(
            field,
            format!(
                "cannot fetch {} from the Hub into {}{files}: {err}",
                self.describe(),
                self.cache_dir(cache).display()
            ),
            Some(SETUP_HINT.into()),
        )
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), StageError> {
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if path.is_file() {
            let rel = path.strip_prefix(root).expect("under root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// A `MODEL` param, resolved to a directory on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The param as written, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub shown: String,
    /// The directory holding the model's files (a Hub snapshot or a local directory).
    pub dir: PathBuf,
    /// The files of `dir` the stage reads, relative: what its fingerprint covers, so that
    /// editing a README or adding an unrelated file reruns nothing. Empty: the whole directory.
    pub files: Vec<String>,
}

impl ResolvedModel {
    /// The external the engine hashes: the content of the files the stage reads, not the
    /// directory's name.
    pub fn external(&self, field: &str) -> External {
        External {
            field: field.to_string(),
            shown: self.shown.clone(),
            path: self.dir.clone(),
            content_only: true,
            files: (!self.files.is_empty()).then(|| self.files.clone()),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The model as [`ResolvedModel::external`] declared it, for the run to read from
    /// [`crate::api::Context::externals`] instead of resolving it again.
    pub fn from_external(external: &External) -> ResolvedModel {
        ResolvedModel {
            shown: external.shown.clone(),
            dir: external.path.clone(),
            files: external.files.clone().unwrap_or_default(),
        }
    }
}

/// Resolves `spec` (param `field`): a directory relative to `root` when one exists there (or the
/// spec starts with `.` or `/`), else a Hub id. `required` files must be there (downloaded
/// when allowed); `optional` ones are fetched when online and present in the repo.
pub fn resolve(
    spec: &str,
    root: &Path,
    offline: bool,
    field: &str,
    required: &[&str],
    optional: &[&str],
) -> Result<ResolvedModel, StageError> {
    // `./models/x` under the root `.` reads `./models/x`, not `././models/x`.
    let local: PathBuf = root.join(spec).components().collect();
    let looks_local = spec.starts_with('.') || spec.starts_with('/') || local.exists();
    let dir = if looks_local {
        if !local.is_dir() {
            return Err(StageError::param(
                field,
                format!("model directory `{spec}` does not exist ({})", local.display()),
                Some("a model is a directory (relative to the pipeline root) or a Hub id such as `sentence-transformers/all-MiniLM-L6-v2`".into()),
            ));
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|f| !local.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(StageError::param(
                field,
                format!("model directory `{spec}` lacks {}", missing.join(", ")),
                None,
            ));
        }
        local
    } else {
        let Some(repo) = HubRepo::parse(RepoKind::Model, spec) else {
            return Err(StageError::param(
                field,
                format!(
                    "`{spec}` is neither a directory under {} nor a Hub id (`owner/name`)",
                    root.display()
                ),
                Some(
                    "e.g. `sentence-transformers/all-MiniLM-L6-v2` or `models/my-tokenizer`".into(),
                ),
            ));
        };
        repo.fetch(required, optional, offline, field)?
    };
    // What the stage reads: the required files and whichever optional ones are there.
    let files = required
        .iter()
        .chain(optional)
        .filter(|f| dir.join(f).is_file())
        .map(|f| f.to_string())
        .collect();
    Ok(ResolvedModel {
        shown: spec.to_string(),
        dir,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_ids() {
        let r = HubRepo::parse(RepoKind::Model, "sentence-transformers/all-MiniLM-L6-v2").unwrap();
        assert_eq!(
            (r.id.as_str(), r.revision.as_str()),
            ("sentence-transformers/all-MiniLM-L6-v2", "main")
        );
        assert_eq!(
            HubRepo::parse(RepoKind::Model, "a/b@v1").unwrap().revision,
            "v1"
        );
        for bad in ["bert", "a/b/c", "../x", "a/", "a/b@"] {
            assert_eq!(HubRepo::parse(RepoKind::Model, bad), None, "{bad}");
        }
        assert_eq!(
            HubRepo::parse(RepoKind::Dataset, "dair-ai/emotion")
                .unwrap()
                .cache_dir(Path::new("/c")),
            PathBuf::from("/c/datasets--dair-ai--emotion")
        );
    }

    #[test]
    fn local_directories_win_and_missing_files_are_named() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("owner/tok")).unwrap();
        std::fs::write(root.path().join("owner/tok/tokenizer.json"), "{}").unwrap();
        let m = resolve(
            "owner/tok",
            root.path(),
            true,
            "tokenizer",
            &["tokenizer.json"],
            &[],
        )
        .unwrap();
        assert_eq!(m.dir, root.path().join("owner/tok"));
        assert!(m.external("tokenizer").content_only);
        std::fs::write(root.path().join("owner/tok/README.md"), "# tok").unwrap();
        let m = resolve(
            "owner/tok",
            root.path(),
            true,
            "tokenizer",
            &["tokenizer.json"],
            &["tokenizer_config.json"],
        )
        .unwrap();
        assert_eq!(
            m.external("tokenizer").files,
            Some(vec!["tokenizer.json".to_string()])
        );
        let e = resolve(
            "owner/tok",
            root.path(),
            true,
            "tokenizer",
            &["vocab.txt"],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("lacks vocab.txt"), "{e}");
        let e = resolve("./nope", root.path(), true, "tokenizer", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn offline_hub_miss_lists_missing_files_and_says_what_to_do() {
        let cache = tempfile::tempdir().unwrap();
        let repo = HubRepo::parse(RepoKind::Model, "nobody/nothing").unwrap();
        // A snapshot with one of the two files.
        let dir = repo.cache_dir(cache.path());
        std::fs::create_dir_all(dir.join("refs")).unwrap();
        std::fs::write(dir.join("refs/main"), "abc").unwrap();
        std::fs::create_dir_all(dir.join("snapshots/abc")).unwrap();
        std::fs::write(dir.join("snapshots/abc/config.json"), "{}").unwrap();
        assert_eq!(
            repo.cached_snapshot(cache.path()),
            Some(dir.join("snapshots/abc"))
        );
        let err = repo.missing_error(cache.path(), &["tokenizer.json"], "tokenizer", "offline");
        let StageError::Param {
            message,
            hint,
            field,
        } = err
        else {
            panic!()
        };
        assert_eq!(field, "tokenizer");
        assert!(
            message.contains("missing tokenizer.json") && message.contains("--offline"),
            "{message}"
        );
        assert!(hint.unwrap().contains("scripts/setup.sh"));
    }
}
