//! Predictions on new text from a fine-tuned model directory (what `finetune` writes under
//! `model/`): a label with softmax probabilities per text, or a tag per word.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{EncodeInput, Encoding};

use crate::api::StageError;
use crate::hub::model::ResolvedModel;
use crate::hub::pretrained::Pretrained;
use crate::nn::encoders::Config;
use crate::nn::encoders::classifier::{Classifier, Task};

/// A saved classifier with its labels and tokenizer.
pub struct Saved {
    pub model: Classifier,
    pub config: Config,
    /// Label names by id (`id2label`).
    pub labels: Vec<String>,
    pub tokenizer: Pretrained,
    pub device: Device,
}

fn bad(dir: &Path, msg: impl std::fmt::Display) -> StageError {
    StageError::failed(format!("{}: {msg}", dir.display()))
}

/// The task and label names (`id2label`, by id) of a model directory written by `finetune` (or
/// by `transformers`' `save_pretrained` for a supported family), from its `config.json`.
pub fn saved_head(dir: &Path) -> Result<(Task, Vec<String>), StageError> {
    let text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| bad(dir, e))?;
    let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(dir, e))?;
    let task = raw["architectures"]
        .as_array()
        .and_then(|a| a.iter().filter_map(|v| v.as_str()).find_map(Task::from_architecture))
        .ok_or_else(|| bad(dir, "config.json names no ...ForSequenceClassification / ...ForTokenClassification architecture"))?;
    let id2label = raw["id2label"]
        .as_object()
        .ok_or_else(|| bad(dir, "config.json has no id2label"))?;
    let mut labels = vec![String::new(); id2label.len()];
    for (id, name) in id2label {
        let i: usize = id
            .parse()
            .ok()
            .filter(|&i| i < labels.len())
            .ok_or_else(|| bad(dir, format!("id2label has a bad id `{id}`")))?;
        labels[i] = name.as_str().unwrap_or_default().to_string();
    }
    Ok((task, labels))
}

/// Loads a model directory written by `finetune` (see [`saved_head`]) for inference.
pub fn load(dir: &Path, device: &Device) -> Result<Saved, StageError> {
    let (task, labels) = saved_head(dir)?;
    let config = Config::from_file(&dir.join("config.json")).map_err(|e| bad(dir, e))?;
    let weights = dir.join("model.safetensors");
    // SAFETY: mapped read-only; nothing writes into a cached model directory.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device) }
        .map_err(|e| bad(dir, e))?;
    let model = Classifier::load(vb, &config, task, labels.len(), 0.0).map_err(|e| bad(dir, e))?;
    let mut tokenizer = Pretrained::load(&ResolvedModel {
        shown: dir.display().to_string(),
        dir: dir.to_path_buf(),
        files: Vec::new(),
    })?;
    let max = tokenizer.model_max_length;
    tokenizer.set_truncation(max)?;
    Ok(Saved {
        model,
        config,
        labels,
        tokenizer,
        device: device.clone(),
    })
}

/// One text's prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// (label, probability) for every label, most probable first.
    Sequence(Vec<(String, f32)>),
    /// (word, tag) per whitespace-separated word.
    Token(Vec<(String, String)>),
}

fn fail(e: candle_core::Error) -> StageError {
    StageError::failed(format!("predicting: {e}"))
}

impl Saved {
    /// Predicts each text (a token model tags its whitespace-separated words).
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>, StageError> {
        texts.iter().map(|text| self.predict_one(text)).collect()
    }

    fn predict_one(&self, text: &str) -> Result<Prediction, StageError> {
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let input: EncodeInput = match self.model.task {
            Task::SequenceClassification => text.into(),
            Task::TokenClassification => words.clone().into(),
        };
        let enc = self
            .tokenizer
            .tokenizer
            .encode_char_offsets(input, true)
            .map_err(|e| StageError::failed(format!("tokenizing `{text}`: {e}")))?;
        let logits = self.logits(&enc)?;
        match self.model.task {
            Task::SequenceClassification => self.ranked_labels(&logits),
            Task::TokenClassification => self.tagged_words(&logits, &enc, words),
        }
    }

    /// The logits of one encoded text, `[1, k]` or `[1, tokens, k]`.
    fn logits(&self, enc: &Encoding) -> Result<Tensor, StageError> {
        let device = &self.device;
        let ids = Tensor::new(enc.get_ids(), device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(fail)?;
        let mask = ids.ones_like().map_err(fail)?;
        let types = if self.config.uses_token_types() && self.tokenizer.has_token_type_ids {
            Some(
                Tensor::new(enc.get_type_ids(), device)
                    .and_then(|t| t.unsqueeze(0))
                    .map_err(fail)?,
            )
        } else {
            None
        };
        self.model
            .forward(&ids, &mask, types.as_ref(), false)
            .map_err(fail)
    }

    /// Every label with its probability, most probable first.
    fn ranked_labels(&self, logits: &Tensor) -> Result<Prediction, StageError> {
        let probs = candle_nn::ops::softmax(logits, D::Minus1)
            .and_then(|p| p.squeeze(0))
            .and_then(|p| p.to_vec1::<f32>())
            .map_err(fail)?;
        let mut ranked: Vec<(String, f32)> = self.labels.iter().cloned().zip(probs).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Prediction::Sequence(ranked))
    }

    /// Each word with the tag of its first sub-word, as in training.
    fn tagged_words(
        &self,
        logits: &Tensor,
        enc: &Encoding,
        words: Vec<String>,
    ) -> Result<Prediction, StageError> {
        let rows = logits
            .squeeze(0)
            .and_then(|l| l.to_vec2::<f32>())
            .map_err(fail)?;
        let mut tags = vec![None; words.len()];
        for (j, w) in enc.get_word_ids().iter().enumerate() {
            if let Some(w) = w
                && tags[*w as usize].is_none()
            {
                let best = crate::numeric::argmax(&rows[j]);
                tags[*w as usize] = Some(self.labels[best].clone());
            }
        }
        Ok(Prediction::Token(
            words
                .into_iter()
                .zip(tags)
                // A word cut off by truncation has no tag.
                .map(|(w, t)| (w, t.unwrap_or_else(|| "-".into())))
                .collect(),
        ))
    }
}

/// `cairn predict`'s text for `texts`, from the stage's files (the model under `model/`).
pub fn predict_texts(files: &Path, texts: &[String]) -> Result<String, StageError> {
    let saved = load(&files.join("model"), &Device::Cpu)?;
    let mut out = String::new();
    for (text, p) in texts.iter().zip(saved.predict(texts)?) {
        match p {
            Prediction::Sequence(ranked) => {
                out.push_str(&format!("{text:?} → {}\n ", ranked[0].0));
                for (label, prob) in &ranked {
                    out.push_str(&format!(" {label} {prob:.4}"));
                }
                out.push('\n');
            }
            Prediction::Token(tags) => {
                out.push_str(&format!("{text:?}\n "));
                for (w, t) in &tags {
                    out.push_str(&format!(" {w}/{t}"));
                }
                out.push('\n');
            }
        }
    }
    Ok(out)
}
