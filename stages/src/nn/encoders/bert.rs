//! BERT (and MiniLM, which is BERT-shaped): word + absolute position + token type embeddings,
//! then post-LN layers. XLM-R reuses the config and the layers with its own position ids.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::{Activation, Layer, LayerNorm, Linear, SelfAttention};

/// `config.json` of BERT-shaped models (permissive: unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default)]
    pub hidden_act: Activation,
    /// Default 0.1.
    #[serde(default = "dropout_default")]
    pub hidden_dropout_prob: f32,
    /// Default 0.1.
    #[serde(default = "dropout_default")]
    pub attention_probs_dropout_prob: f32,
    /// Default 512.
    #[serde(default = "max_pos_default")]
    pub max_position_embeddings: usize,
    /// Default 2 (BERT); XLM-R has 1.
    #[serde(default = "type_vocab_default")]
    pub type_vocab_size: usize,
    /// Default 1e-12.
    #[serde(default = "eps_default")]
    pub layer_norm_eps: f64,
    /// Default 0 (`[PAD]`); XLM-R's is 1.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Only `absolute` is supported (checked at load).
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn dropout_default() -> f32 {
    0.1
}
fn max_pos_default() -> usize {
    512
}
fn type_vocab_default() -> usize {
    2
}
fn eps_default() -> f64 {
    1e-12
}

/// Word, position and token type embeddings, summed, normalized, dropped out.
#[derive(Debug, Clone)]
pub struct Embeddings {
    pub word: Tensor,
    pub position: Tensor,
    /// Absent when `type_vocab_size` is 0.
    pub token_type: Option<Tensor>,
    pub norm: LayerNorm,
    pub dropout: f32,
    span: tracing::Span,
}

impl Embeddings {
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Embeddings> {
        Ok(Embeddings {
            word: vb.get((c.vocab_size, c.hidden_size), "word_embeddings.weight")?,
            position: vb.get(
                (c.max_position_embeddings, c.hidden_size),
                "position_embeddings.weight",
            )?,
            token_type: if c.type_vocab_size > 0 {
                Some(vb.get(
                    (c.type_vocab_size, c.hidden_size),
                    "token_type_embeddings.weight",
                )?)
            } else {
                None
            },
            norm: LayerNorm::load(vb.pp("LayerNorm"), c.hidden_size, c.layer_norm_eps)?,
            dropout: c.hidden_dropout_prob,
            span: tracing::trace_span!("embeddings"),
        })
    }

    /// `position_ids`: u32 `[b, t]` or `[1, t]` (broadcast).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        position_ids: &Tensor,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let _e = self.span.enter();
        let words = super::embed(&self.word, input_ids)?;
        let positions = super::embed(&self.position, position_ids)?;
        let mut x = words.broadcast_add(&positions)?;
        if let Some(table) = &self.token_type {
            let types = match token_type_ids {
                Some(t) => super::embed(table, t)?,
                // All zeros: row 0 of the table, broadcast.
                None => table.narrow(0, 0, 1)?.unsqueeze(0)?,
            };
            x = x.broadcast_add(&types)?;
        }
        super::dropout(&self.norm.forward(&x, train)?, self.dropout, train)
    }
}

/// The post-LN layers under `encoder.layer.{i}` (BERT and XLM-R names).
pub fn load_layers(vb: VarBuilder, c: &Config) -> Result<Vec<Layer>> {
    let h = c.hidden_size;
    (0..c.num_hidden_layers)
        .map(|i| {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let attention = SelfAttention::new(
                Linear::load(a.pp("self.query"), h, h)?,
                Linear::load(a.pp("self.key"), h, h)?,
                Linear::load(a.pp("self.value"), h, h)?,
                Linear::load(a.pp("output.dense"), h, h)?,
                c.num_attention_heads,
                c.attention_probs_dropout_prob,
            );
            Ok(Layer::new(
                attention,
                LayerNorm::load(a.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                Linear::load(l.pp("intermediate.dense"), h, c.intermediate_size)?,
                Linear::load(l.pp("output.dense"), c.intermediate_size, h)?,
                LayerNorm::load(l.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                c.hidden_act,
                c.hidden_dropout_prob,
            ))
        })
        .collect()
}

/// Checks what this implementation does not cover.
pub fn check(c: &Config) -> Result<()> {
    if let Some(t) = &c.position_embedding_type
        && t != "absolute"
    {
        candle_core::bail!("position_embedding_type `{t}` is not supported (only `absolute`)");
    }
    if !c.hidden_size.is_multiple_of(c.num_attention_heads) {
        candle_core::bail!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            c.hidden_size,
            c.num_attention_heads
        );
    }
    Ok(())
}

/// `BertModel` without the pooler: the last hidden state.
#[derive(Debug, Clone)]
pub struct BertModel {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
    span: tracing::Span,
}

impl BertModel {
    /// Loads from `vb` at the root (`BertModel`) or under `bert.` (task heads' checkpoints).
    pub fn load(vb: VarBuilder, c: &Config) -> Result<BertModel> {
        check(c)?;
        let vb = super::base_builder(vb, &["bert"], "embeddings.word_embeddings.weight");
        Ok(BertModel {
            embeddings: Embeddings::load(vb.pp("embeddings"), c)?,
            layers: load_layers(vb, c)?,
            span: tracing::trace_span!("bert"),
        })
    }

    /// The layers' input (embeddings) and the additive attention mask.
    pub fn inputs(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let _e = self.span.enter();
        let t = input_ids.dim(1)?;
        let positions = Tensor::arange(0u32, t as u32, input_ids.device())?.unsqueeze(0)?;
        let x = self
            .embeddings
            .forward(input_ids, &positions, token_type_ids, train)?;
        Ok((x, super::additive_mask(attention_mask)?))
    }
}
