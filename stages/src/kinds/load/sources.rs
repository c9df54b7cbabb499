//! Which files a `load` reads for each split: the `splits` paths under the pipeline root, or a
//! Hub dataset's Parquet files, chosen by the `splits` patterns or by the usual
//! `<folder>/<split>-NNNNN-of-NNNNN.parquet` naming and downloaded through the Hugging Face cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::{Format, LoadParams};
use crate::api::StageError;
use crate::hub::model::{HubRepo, RepoKind};

/// One file to read, for one split.
pub(super) struct SourceFile {
    pub(super) split: String,
    /// The param that named the file (`splits.train`, `splits.train.0`...).
    pub(super) field: String,
    /// The file as messages show it (as written, or `hf://owner/dataset/path`).
    pub(super) shown: String,
    pub(super) path: PathBuf,
}

/// The files to read: the `splits` map, or the Hub dataset's Parquet files (downloaded now,
/// when allowed). Checks the params first, so that a mistake fails at resolve time.
pub(super) fn sources(
    p: &LoadParams,
    root: &Path,
    offline: bool,
) -> Result<Vec<SourceFile>, StageError> {
    let format = p.resolved_format()?;
    p.check(format)?;
    match &p.source {
        None => local_files(p, root),
        Some(source) => hub_files(p, source, format, offline),
    }
}

/// The `splits` map's files, relative to the pipeline root.
fn local_files(p: &LoadParams, root: &Path) -> Result<Vec<SourceFile>, StageError> {
    if p.splits.is_empty() {
        return Err(StageError::param(
            "splits",
            "no splits given",
            Some("e.g. `splits: {train: data/train.csv}`".into()),
        ));
    }
    p.splits
        .iter()
        .map(|(split, file)| {
            let source = SourceFile {
                split: split.clone(),
                field: format!("splits.{split}"),
                shown: file.clone(),
                path: root.join(file),
            };
            // A directory would pass the "exists" check and fail only when the stage runs.
            if source.path.is_dir() {
                return Err(StageError::param(
                    &source.field,
                    format!("`{file}` is a directory; a split names one file"),
                    Some(format!("e.g. `{split}: {file}/{split}.txt`")),
                ));
            }
            Ok(source)
        })
        .collect()
}

/// The Hub dataset's chosen files, fetched into the Hugging Face cache.
fn hub_files(
    p: &LoadParams,
    source: &str,
    format: Format,
    offline: bool,
) -> Result<Vec<SourceFile>, StageError> {
    let repo = hub_repo(source)?;
    if format != Format::Parquet {
        return Err(StageError::param(
            "format",
            "Hub datasets are read as parquet",
            None,
        ));
    }
    let listing = repo.list_files(offline, "source")?;
    let chosen = select_hub_files(&listing, &p.splits, p.config.as_deref())
        .map_err(|m| StageError::param("source", m, None))?;
    let mut out = Vec::new();
    for (split, files) in chosen {
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        let snapshot = repo.fetch(&names, &[], offline, "source")?;
        let many = files.len() > 1;
        for (i, f) in files.iter().enumerate() {
            out.push(SourceFile {
                split: split.clone(),
                field: if many {
                    format!("splits.{split}.{i}")
                } else {
                    format!("splits.{split}")
                },
                shown: format!("{source}/{f}"),
                path: snapshot.join(f),
            });
        }
    }
    Ok(out)
}

/// `hf://owner/dataset[@revision]` as a Hub dataset.
fn hub_repo(source: &str) -> Result<HubRepo, StageError> {
    source
        .strip_prefix("hf://")
        .and_then(|id| HubRepo::parse(RepoKind::Dataset, id))
        .ok_or_else(|| {
            StageError::param(
                "source",
                format!("`{source}` is not a Hub dataset reference"),
                Some("write `hf://owner/dataset`, e.g. `hf://dair-ai/emotion`".into()),
            )
        })
}

/// Chooses a Hub dataset's Parquet files per split: by the `splits` patterns, or by the usual
/// `<folder>/<split>-NNNNN-of-NNNNN.parquet` naming.
fn select_hub_files(
    listing: &[String],
    patterns: &BTreeMap<String, String>,
    config: Option<&str>,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    if patterns.is_empty() {
        by_folder(listing, config)
    } else {
        by_pattern(listing, patterns)
    }
}

/// Each split's files: those its pattern matches.
fn by_pattern(
    listing: &[String],
    patterns: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for (split, pattern) in patterns {
        let files: Vec<String> = match star_glob(pattern) {
            Some(glob) => listing
                .iter()
                .filter(|f| glob.is_match(f))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        if files.is_empty() {
            return Err(format!(
                "no file of the repository matches `{pattern}` (split `{split}`)"
            ));
        }
        out.insert(split.clone(), files);
    }
    Ok(out)
}

/// A `splits:` pattern as a matcher: `*` matches any run of characters (including `/`), every
/// other character only itself (globset's `?`, `[...]`, `{a,b}` and `\` are escaped, and a run
/// of `*` is one `*`, since globset reads `**/` as "any folders, or none"). `None` if globset
/// refuses it, which escaping leaves no way to do.
fn star_glob(pattern: &str) -> Option<GlobMatcher> {
    let mut glob = pattern
        .split('*')
        .map(globset::escape)
        .collect::<Vec<_>>()
        .join("*");
    while glob.contains("**") {
        glob = glob.replace("**", "*");
    }
    let built = GlobBuilder::new(&glob)
        .literal_separator(false)
        .backslash_escape(false)
        .build();
    built.ok().map(|g| g.compile_matcher())
}

/// Each split's files within one folder (`config:`, or the only folder holding Parquet files),
/// the split named by the file name's first `-` or `.`.
fn by_folder(
    listing: &[String],
    config: Option<&str>,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let parquet: Vec<&String> = listing.iter().filter(|f| f.ends_with(".parquet")).collect();
    let folder = |f: &str| {
        f.rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default()
    };
    let mut folders: Vec<String> = parquet.iter().map(|f| folder(f)).collect();
    folders.sort();
    folders.dedup();
    let chosen = match config {
        Some(c) => c.trim_end_matches('/').to_string(),
        None if folders.len() == 1 => folders[0].clone(),
        None if folders.is_empty() => return Err("the repository has no Parquet files".into()),
        None => {
            return Err(format!(
                "the repository has Parquet files in several folders ({}): choose one with `config:`",
                folders.join(", ")
            ));
        }
    };
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in parquet.into_iter().filter(|f| folder(f) == chosen) {
        let base = f.rsplit('/').next().unwrap_or(f);
        let split = base.split(['-', '.']).next().unwrap_or(base);
        out.entry(split.to_string()).or_default().push(f.clone());
    }
    if out.is_empty() {
        return Err(format!(
            "no Parquet files in folder `{chosen}` (folders: {})",
            folders.join(", ")
        ));
    }
    for files in out.values_mut() {
        files.sort();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::params;
    use super::*;

    #[test]
    fn limit_zero_is_refused_naming_the_split_and_the_param() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |yaml: &str| match sources(&params(yaml), dir.path(), true) {
            Err(StageError::Param { field, message, .. }) => (field, message),
            Err(e) => panic!("not a param error: {e}"),
            Ok(_) => panic!("limit 0 accepted: {yaml}"),
        };
        assert_eq!(
            refused("{splits: {train: a.txt}, limit: 0}"),
            (
                "limit".into(),
                "`limit: 0` keeps no rows of split `train`".into()
            )
        );
        assert_eq!(
            refused("{splits: {train: a.txt, test: b.txt}, limit: 0}").1,
            "`limit: 0` keeps no rows of splits test, train"
        );
        assert_eq!(
            refused("{splits: {train: a.txt, test: b.txt}, limit: {train: 5, test: 0}}"),
            (
                "limit.test".into(),
                "`limit: {test: 0}` keeps no rows of split `test`".into()
            )
        );
        assert!(
            sources(
                &params("{splits: {train: a.txt}, limit: 1}"),
                dir.path(),
                true
            )
            .is_ok()
        );
    }

    fn glob_match(pattern: &str, text: &str) -> bool {
        star_glob(pattern).is_some_and(|g| g.is_match(text))
    }

    #[test]
    fn hub_files_are_grouped_by_split_within_one_folder() {
        let listing: Vec<String> = [
            "README.md",
            "split/train-00000-of-00001.parquet",
            "split/validation-00000-of-00001.parquet",
            "unsplit/train-00000-of-00001.parquet",
        ]
        .map(String::from)
        .to_vec();
        let e = select_hub_files(&listing, &BTreeMap::new(), None).unwrap_err();
        assert!(e.contains("several folders (split, unsplit)"), "{e}");
        let got = select_hub_files(&listing, &BTreeMap::new(), Some("split")).unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["train", "validation"]);
        let pats: BTreeMap<String, String> =
            [("all".to_string(), "*/train-*.parquet".to_string())].into();
        assert_eq!(
            select_hub_files(&listing, &pats, None).unwrap()["all"].len(),
            2
        );
        assert!(
            glob_match("a*c*e", "abcde")
                && !glob_match("a*c*e", "abde")
                && !glob_match("ab*ba", "aba")
        );
    }

    #[test]
    fn only_star_is_a_wildcard_in_split_patterns() {
        // What the hand-written matcher did before globset: `*` crosses folders, a run of `*` is
        // one `*`, and glob syntax (`?`, `[...]`, `{a,b}`, `\`) is matched literally.
        assert!(glob_match("*.parquet", "a/b/c.parquet"));
        assert!(glob_match("**/train.parquet", "x/train.parquet"));
        assert!(!glob_match("**/train.parquet", "train.parquet"));
        assert!(glob_match("a?[b]{c,d}\\*", "a?[b]{c,d}\\xyz"));
        assert!(!glob_match("a?", "ab") && !glob_match("[ab]", "a") && !glob_match("{a,b}", "a"));
        assert!(glob_match("", "") && !glob_match("", "a") && glob_match("*", ""));
    }
}
