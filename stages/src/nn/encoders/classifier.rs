//! An encoder plus a classification head, named as Hugging Face's `...ForSequenceClassification`
//! and `...ForTokenClassification` name their parameters, so a checkpoint saved from here loads
//! in Python `transformers` and the other way round.
//!
//! | family     | encoder prefix | sequence head                                         | token head         |
//! |------------|----------------|-------------------------------------------------------|--------------------|
//! | BERT       | `bert.`        | `bert.pooler.dense` + tanh on [CLS], drop, `classifier` | drop, `classifier` |
//! | DistilBERT | `distilbert.`  | `pre_classifier` + ReLU on [CLS], drop, `classifier`  | drop, `classifier` |
//! | XLM-R      | `roberta.`     | drop, `classifier.dense` + tanh, drop, `classifier.out_proj` | drop, `classifier` |

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::{Config, Encoder, Family, Linear, dropout};

/// What the head predicts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// One label per sequence, from the first token ([CLS] / `<s>`).
    #[default]
    SequenceClassification,
    /// One label per token.
    TokenClassification,
}

impl Task {
    /// The `architectures` entry of `config.json`.
    pub fn architecture(self, family: Family) -> &'static str {
        match (family, self) {
            (Family::Bert, Task::SequenceClassification) => "BertForSequenceClassification",
            (Family::Bert, Task::TokenClassification) => "BertForTokenClassification",
            (Family::DistilBert, Task::SequenceClassification) => {
                "DistilBertForSequenceClassification"
            }
            (Family::DistilBert, Task::TokenClassification) => "DistilBertForTokenClassification",
            (Family::XlmRoberta, Task::SequenceClassification) => {
                "XLMRobertaForSequenceClassification"
            }
            (Family::XlmRoberta, Task::TokenClassification) => "XLMRobertaForTokenClassification",
        }
    }

    /// Reads the task back from a saved `config.json`'s `architectures`.
    pub fn from_architecture(name: &str) -> Option<Task> {
        if name.ends_with("ForSequenceClassification") {
            Some(Task::SequenceClassification)
        } else if name.ends_with("ForTokenClassification") {
            Some(Task::TokenClassification)
        } else {
            None
        }
    }
}

impl Family {
    /// Where the task models keep the encoder.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::DistilBert => "distilbert",
            Family::XlmRoberta => "roberta",
        }
    }
}

/// The head's dropout as HF picks it from `config.json`.
pub fn head_dropout(config: &serde_json::Value, family: Family, task: Task) -> f32 {
    let num = |k: &str| config.get(k).and_then(serde_json::Value::as_f64);
    let p = match (family, task) {
        (Family::DistilBert, Task::SequenceClassification) => num("seq_classif_dropout"),
        (Family::DistilBert, Task::TokenClassification) => num("dropout"),
        _ => num("classifier_dropout").or_else(|| num("hidden_dropout_prob")),
    };
    p.unwrap_or(0.1) as f32
}

enum Head {
    /// BERT: pooler (dense + tanh) on [CLS], dropout, linear.
    Pooled { pooler: Linear, out: Linear },
    /// DistilBERT: dense + ReLU on [CLS], dropout, linear.
    PreClassifier { pre: Linear, out: Linear },
    /// XLM-R: dropout, dense + tanh on `<s>`, dropout, linear.
    Roberta { dense: Linear, out: Linear },
    /// Any family, token task: dropout, linear on every token.
    Token { out: Linear },
}

/// Encoder + head; `forward` gives logits.
pub struct Classifier {
    pub encoder: Encoder,
    head: Head,
    pub task: Task,
    pub num_labels: usize,
    /// The head's dropout probability.
    pub dropout: f32,
}

impl Classifier {
    /// Builds from `vb` with HF task names (the encoder under `bert.` / `distilbert.` /
    /// `roberta.`).
    pub fn load(
        vb: VarBuilder,
        cfg: &Config,
        task: Task,
        num_labels: usize,
        head_dropout: f32,
    ) -> Result<Classifier> {
        let family = cfg.family();
        let encoder = Encoder::load(vb.pp(family.prefix()), cfg)?;
        let h = cfg.hidden_size();
        let head = match (family, task) {
            (_, Task::TokenClassification) => Head::Token {
                out: Linear::load(vb.pp("classifier"), h, num_labels)?,
            },
            (Family::Bert, Task::SequenceClassification) => Head::Pooled {
                pooler: Linear::load(vb.pp("bert.pooler.dense"), h, h)?,
                out: Linear::load(vb.pp("classifier"), h, num_labels)?,
            },
            (Family::DistilBert, Task::SequenceClassification) => Head::PreClassifier {
                pre: Linear::load(vb.pp("pre_classifier"), h, h)?,
                out: Linear::load(vb.pp("classifier"), h, num_labels)?,
            },
            (Family::XlmRoberta, Task::SequenceClassification) => Head::Roberta {
                dense: Linear::load(vb.pp("classifier.dense"), h, h)?,
                out: Linear::load(vb.pp("classifier.out_proj"), h, num_labels)?,
            },
        };
        Ok(Classifier {
            encoder,
            head,
            task,
            num_labels,
            dropout: head_dropout,
        })
    }

    /// Logits: `[b, num_labels]` (sequence) or `[b, t, num_labels]` (token).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let states = self
            .encoder
            .forward(input_ids, attention_mask, token_type_ids, train)?;
        let p = self.dropout;
        let first = || states.narrow(1, 0, 1)?.squeeze(1);
        match &self.head {
            Head::Token { out } => out.forward(&dropout(&states, p, train)?),
            Head::Pooled { pooler, out } => {
                let pooled = pooler.forward(&first()?)?.tanh()?;
                out.forward(&dropout(&pooled, p, train)?)
            }
            Head::PreClassifier { pre, out } => {
                let x = pre.forward(&first()?)?.relu()?;
                out.forward(&dropout(&x, p, train)?)
            }
            Head::Roberta { dense, out } => {
                let x = dense.forward(&dropout(&first()?, p, train)?)?.tanh()?;
                out.forward(&dropout(&x, p, train)?)
            }
        }
    }
}
