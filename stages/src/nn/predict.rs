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
    /// A tag per whitespace-separated word.
    Token(Vec<TaggedWord>),
}

/// One word of a token-classification prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedWord {
    pub word: String,
    /// The tag of its first sub-word (`-` for a word truncation cut off).
    pub tag: String,
    /// That tag's softmax probability.
    pub score: f32,
    /// Its character span in the text, `[start, end)`.
    pub span: (usize, usize),
}

/// Tagged words grouped into entities, like transformers' `aggregation_strategy="simple"` at the
/// word level: `B-X` starts an entity of type X, `I-X` continues one of type X (else starts
/// one), anything else (`O`, `-`) ends it; a tag without a `B-`/`I-` prefix is its own type and
/// joins the words next to it with the same tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub kind: String,
    /// The text from its first word's start to its last word's end.
    pub text: String,
    /// The mean of its words' scores.
    pub score: f32,
    pub span: (usize, usize),
}

pub fn entities(text: &str, words: &[TaggedWord]) -> Vec<Entity> {
    let mut groups: Vec<(String, Vec<&TaggedWord>)> = Vec::new();
    let mut open = false;
    for w in words {
        let (begins, kind) = match w.tag.split_once('-') {
            Some(("B", kind)) => (true, kind),
            Some(("I", kind)) => (false, kind),
            _ if w.tag == "O" || w.tag == "-" => {
                open = false;
                continue;
            }
            _ => (false, w.tag.as_str()),
        };
        match groups.last_mut() {
            Some((current, members)) if open && !begins && current == kind => members.push(w),
            _ => groups.push((kind.to_string(), vec![w])),
        }
        open = true;
    }
    let chars: Vec<char> = text.chars().collect();
    groups
        .into_iter()
        .map(|(kind, members)| {
            let span = (members[0].span.0, members[members.len() - 1].span.1);
            Entity {
                kind,
                text: chars[span.0..span.1].iter().collect(),
                score: members.iter().map(|w| w.score).sum::<f32>() / members.len() as f32,
                span,
            }
        })
        .collect()
}

/// Each whitespace-separated word with its character span.
fn words_with_spans(text: &str) -> Vec<(String, (usize, usize))> {
    let mut out = Vec::new();
    let mut start = None;
    let mut word = String::new();
    for (i, c) in text.chars().enumerate() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((std::mem::take(&mut word), (s, i)));
                start = None;
            }
            (true, None) => {}
            (false, _) => {
                start.get_or_insert(i);
                word.push(c);
            }
        }
    }
    if let Some(s) = start {
        out.push((word, (s, text.chars().count())));
    }
    out
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
        let spans = words_with_spans(text);
        let words: Vec<String> = spans.iter().map(|(w, _)| w.clone()).collect();
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
            Task::TokenClassification => self.tagged_words(&logits, &enc, spans),
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

    /// Each word with the tag of its first sub-word, as in training, and that tag's probability.
    fn tagged_words(
        &self,
        logits: &Tensor,
        enc: &Encoding,
        words: Vec<(String, (usize, usize))>,
    ) -> Result<Prediction, StageError> {
        let rows = candle_nn::ops::softmax(logits, D::Minus1)
            .and_then(|p| p.squeeze(0))
            .and_then(|p| p.to_vec2::<f32>())
            .map_err(fail)?;
        let mut tags: Vec<Option<(String, f32)>> = vec![None; words.len()];
        for (j, w) in enc.get_word_ids().iter().enumerate() {
            if let Some(w) = w
                && tags[*w as usize].is_none()
            {
                let best = crate::numeric::argmax(&rows[j]);
                tags[*w as usize] = Some((self.labels[best].clone(), rows[j][best]));
            }
        }
        Ok(Prediction::Token(
            words
                .into_iter()
                .zip(tags)
                .map(|((word, span), t)| {
                    // A word cut off by truncation has no tag.
                    let (tag, score) = t.unwrap_or_else(|| ("-".into(), 0.0));
                    TaggedWord {
                        word,
                        tag,
                        score,
                        span,
                    }
                })
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
            Prediction::Token(tagged) => {
                out.push_str(&format!("{text:?}\n "));
                for w in &tagged {
                    out.push_str(&format!(" {}/{}", w.word, w.tag));
                }
                out.push('\n');
                for e in entities(text, &tagged) {
                    out.push_str(&format!(
                        "  {:<6} {:<24} {:.4}  [{}, {})\n",
                        e.kind,
                        format!("{:?}", e.text),
                        e.score,
                        e.span.0,
                        e.span.1
                    ));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod entity_tests {
    use super::*;

    fn tagged(text: &str, tags: &[(&str, f32)]) -> Vec<TaggedWord> {
        words_with_spans(text)
            .into_iter()
            .zip(tags)
            .map(|((word, span), (tag, score))| TaggedWord {
                word,
                tag: tag.to_string(),
                score: *score,
                span,
            })
            .collect()
    }

    /// As transformers' "simple" strategy groups the chapter's example.
    #[test]
    fn words_group_into_entities_with_mean_scores_and_character_spans() {
        let text = "Jeff  Dean ist ein Informatiker bei Google in Kalifornien";
        let tags = [
            ("B-PER", 0.99),
            ("I-PER", 0.97),
            ("O", 0.9),
            ("O", 0.9),
            ("O", 0.9),
            ("O", 0.9),
            ("B-ORG", 0.8),
            ("O", 0.9),
            ("B-LOC", 0.95),
        ];
        let found = entities(text, &tagged(text, &tags));
        let short: Vec<(&str, &str, (usize, usize))> = found
            .iter()
            .map(|e| (e.kind.as_str(), e.text.as_str(), e.span))
            .collect();
        assert_eq!(
            short,
            [
                ("PER", "Jeff  Dean", (0, 10)),
                ("ORG", "Google", (36, 42)),
                ("LOC", "Kalifornien", (46, 57))
            ]
        );
        assert!((found[0].score - 0.98).abs() < 1e-6);
    }

    #[test]
    fn b_starts_a_new_entity_and_a_stray_i_starts_one_too() {
        let text = "Anna Berlin Paris Bonn é";
        let tags = [
            ("B-PER", 1.0),
            ("B-LOC", 1.0),
            ("I-LOC", 1.0),
            ("I-ORG", 1.0),
            ("PER", 1.0),
        ];
        let found = entities(text, &tagged(text, &tags));
        let short: Vec<(&str, &str)> = found
            .iter()
            .map(|e| (e.kind.as_str(), e.text.as_str()))
            .collect();
        assert_eq!(
            short,
            [
                ("PER", "Anna"),
                ("LOC", "Berlin Paris"),
                ("ORG", "Bonn"),
                ("PER", "é")
            ]
        );
        assert_eq!(found[3].span, (23, 24), "character offsets, not bytes");
    }
}
