//! A pretrained tokenizer (`tokenizer.json`) through the `tokenizers` crate, loaded the way
//! Python `transformers` uses it.
//!
//! The pitfall this module exists for: a `tokenizer.json` may carry its own padding and
//! truncation (all-MiniLM-L6-v2's pads every sequence to 128 and truncates at 128). The Rust
//! crate applies both as loaded; `transformers` ignores them and truncates only at the length
//! asked for, by default `model_max_length` from `tokenizer_config.json`. So padding is always
//! turned off here and truncation is set explicitly by the caller.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::api::{PrepareEnv, StageError};
use crate::hub::model::{self, ResolvedModel};
use crate::nn::limits::ModelLimits;

/// The files a tokenizer reference needs, and the ones read when present (`config.json` only
/// for its length, when the tokenizer declares none). They are what its fingerprint covers.
pub const REQUIRED: &[&str] = &["tokenizer.json"];
pub const OPTIONAL: &[&str] = &["tokenizer_config.json", "config.json"];

/// Lengths above this in `tokenizer_config.json` mean "no limit" (transformers writes 1e30, or
/// `int(1e30)` = 1000000000000000019884624838656).
const NO_LIMIT: u64 = 1_000_000;

/// What `tokenizer_config.json` says of `model_max_length`.
#[derive(Debug, PartialEq)]
enum Declared {
    Limit(usize),
    /// transformers' sentinel for "no limit": not a usable length.
    NoLimit,
    Unset,
}

fn declared_max_length(config: Option<&serde_json::Value>) -> Declared {
    // `as_f64` reads the 31-digit integer sentinel too (as 1e30).
    match config
        .and_then(|c| c.get("model_max_length"))
        .and_then(|v| v.as_f64())
    {
        Some(n) if n >= 1.0 && n < NO_LIMIT as f64 => Declared::Limit(n as usize),
        Some(_) => Declared::NoLimit,
        None => Declared::Unset,
    }
}

/// The model's usable positions from a `config.json` beside the tokenizer, logged, for a
/// tokenizer that declares no length: "no limit" would let a long text through to fail inside
/// the encoder.
fn positions_fallback(
    model: &ResolvedModel,
) -> Result<(Option<usize>, Option<String>), StageError> {
    let Some(limits) = ModelLimits::read(&model.dir)? else {
        return Ok((None, None));
    };
    let Some(max) = limits.max_length() else {
        return Ok((None, None));
    };
    let note = format!(
        "`{}` declares no model_max_length; using {max} from its config.json ({})",
        model.shown,
        limits.explain_max_length()
    );
    tracing::info!(tokenizer = %model.shown, max_length = max, "{note}");
    Ok((Some(max), Some(note)))
}

/// Whether [`Pretrained::load`] reads the model's `config.json` for its length (the
/// tokenizer's own files declare none): then it is one of the tokenizer's fingerprinted files.
fn reads_model_config(dir: &Path) -> bool {
    let config = read_json(&dir.join("tokenizer_config.json"));
    !matches!(declared_max_length(config.as_ref()), Declared::Limit(_))
}

/// Resolves a tokenizer reference (a directory or a Hub id) at prepare time.
pub fn resolve(
    spec: &str,
    root: &Path,
    offline: bool,
    field: &str,
) -> Result<ResolvedModel, StageError> {
    let mut model = model::resolve(spec, root, offline, field, REQUIRED, OPTIONAL)?;
    if !reads_model_config(&model.dir) {
        model.files.retain(|f| f != "config.json");
    }
    Ok(model)
}

/// Resolves at prepare time (for `externals()`).
pub fn resolve_env(spec: &str, env: &PrepareEnv, field: &str) -> Result<ResolvedModel, StageError> {
    resolve(spec, env.root, env.offline, field)
}

/// A loaded tokenizer with padding off and no truncation yet, plus what `transformers` would
/// read from the model's config files.
pub struct Pretrained {
    pub tokenizer: Tokenizer,
    /// `model_max_length` from `tokenizer_config.json` (else the truncation length the
    /// `tokenizer.json` carries). When neither gives a limit (unset, or transformers' 1e30
    /// sentinel for "no limit"), the model's positions from a `config.json` beside the
    /// tokenizer (see [`ModelLimits::max_length`]); `None` when there is none.
    pub model_max_length: Option<usize>,
    /// Set when `model_max_length` came from the model's positions: where, for the log.
    pub max_length_note: Option<String>,
    /// Whether the model takes `token_type_ids` (see [`Pretrained::load`]).
    pub has_token_type_ids: bool,
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

impl Pretrained {
    /// Loads `tokenizer.json` from the model directory. A file that does not parse is an error
    /// naming it. `token_type_ids`: `model_input_names` from `tokenizer_config.json` when given;
    /// else none for the model families that have none (DistilBERT, RoBERTa, GPT-2, ...); else
    /// whether the post-processor gives a second sequence type id 1 (BERT-like).
    pub fn load(model: &ResolvedModel) -> Result<Pretrained, StageError> {
        let path = model.file("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| {
            StageError::failed(format!(
                "{}: the tokenizer.json of `{}` does not parse: {e}",
                path.display(),
                model.shown
            ))
        })?;
        let carried = tokenizer.get_truncation().map(|t| t.max_length);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| StageError::failed(format!("{}: {e}", path.display())))?;

        let config = read_json(&model.file("tokenizer_config.json"));
        let declared = match declared_max_length(config.as_ref()) {
            Declared::Limit(n) => Some(n),
            Declared::NoLimit => None,
            Declared::Unset => carried,
        };
        let (model_max_length, max_length_note) = match declared {
            Some(n) => (Some(n), None),
            None => positions_fallback(model)?,
        };

        let input_names = config
            .as_ref()
            .and_then(|c| c.get("model_input_names"))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .any(|x| x == "token_type_ids")
            });
        let class = config
            .as_ref()
            .and_then(|c| c.get("tokenizer_class"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .trim_end_matches("Fast")
            .to_string();
        const WITHOUT_TYPES: &[&str] = &[
            "DistilBertTokenizer",
            "RobertaTokenizer",
            "XLMRobertaTokenizer",
            "GPT2Tokenizer",
            "CamembertTokenizer",
            "BartTokenizer",
            "T5Tokenizer",
            "LlamaTokenizer",
        ];
        let has_token_type_ids = input_names.unwrap_or_else(|| {
            !WITHOUT_TYPES.contains(&class.as_str()) && post_processor_has_pair_types(&path)
        });
        Ok(Pretrained {
            tokenizer,
            model_max_length,
            max_length_note,
            has_token_type_ids,
        })
    }

    /// Truncates at `max_length` (longest-first, stride 0, from the right, as `transformers`
    /// does), or not at all.
    pub fn set_truncation(&mut self, max_length: Option<usize>) -> Result<(), StageError> {
        let params = max_length.map(|max_length| TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        });
        self.tokenizer
            .with_truncation(params)
            .map_err(|e| StageError::failed(format!("cannot truncate at {max_length:?}: {e}")))?;
        Ok(())
    }
}

/// Whether the `tokenizer.json` post-processor marks a second sequence with type id 1.
fn post_processor_has_pair_types(path: &Path) -> bool {
    let Some(json) = read_json(path) else {
        return false;
    };
    let Some(pp) = json.get("post_processor") else {
        return false;
    };
    match pp.get("type").and_then(|t| t.as_str()) {
        Some("BertProcessing") => true,
        Some("TemplateProcessing") => {
            pp.get("pair")
                .and_then(|p| p.as_array())
                .is_some_and(|items| {
                    items.iter().any(|i| {
                        i.as_object()
                            .and_then(|o| o.values().next())
                            .and_then(|v| v.get("type_id"))
                            .and_then(|t| t.as_u64())
                            .is_some_and(|t| t > 0)
                    })
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformers_no_limit_sentinels_are_not_lengths() {
        let declared = |text: &str| declared_max_length(Some(&serde_json::from_str(text).unwrap()));
        assert_eq!(
            declared(r#"{"model_max_length": 512}"#),
            Declared::Limit(512)
        );
        assert_eq!(declared(r#"{"model_max_length": 1e30}"#), Declared::NoLimit);
        assert_eq!(
            declared(r#"{"model_max_length": 1000000000000000019884624838656}"#),
            Declared::NoLimit
        );
        assert_eq!(declared("{}"), Declared::Unset);
    }

    #[test]
    fn a_tokenizer_without_a_length_takes_its_models_positions() {
        let dir = tempfile::tempdir().unwrap();
        let model = ResolvedModel {
            shown: "m".into(),
            dir: dir.path().to_path_buf(),
            files: Vec::new(),
        };
        assert_eq!(positions_fallback(&model).unwrap(), (None, None));
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1}"#,
        )
        .unwrap();
        let (max, note) = positions_fallback(&model).unwrap();
        assert_eq!(max, Some(512));
        assert!(note.unwrap().contains("max_position_embeddings 514 − 2"));
        assert!(reads_model_config(dir.path()));
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"model_max_length": 128}"#,
        )
        .unwrap();
        assert!(!reads_model_config(dir.path()));
    }
}
