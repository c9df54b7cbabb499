//! DistilBERT: word + position embeddings (no token types), post-LN layers with their own
//! parameter names (`transformer.layer.{i}.attention.q_lin`, `sa_layer_norm`, `ffn.lin1`, ...).
//!
//! Two things candle-transformers' version gets wrong and this one checks against HF: the
//! attention mask is 1 for tokens (not "non-zero = masked"), and `activation: gelu` is the erf
//! GELU, not the tanh approximation.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::{Activation, Layer, LayerNorm, Linear, SelfAttention};

/// HF's DistilBERT LayerNorm epsilon (hard-coded there, not in the config).
const EPS: f64 = 1e-12;

/// `config.json` of DistilBERT (permissive: unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    #[serde(default)]
    pub activation: Activation,
    /// Default 0.1.
    #[serde(default = "dropout_default")]
    pub dropout: f32,
    /// Default 0.1.
    #[serde(default = "dropout_default")]
    pub attention_dropout: f32,
    /// Default 512.
    #[serde(default = "max_pos_default")]
    pub max_position_embeddings: usize,
    /// Default 0.
    #[serde(default)]
    pub pad_token_id: u32,
}

fn dropout_default() -> f32 {
    0.1
}
fn max_pos_default() -> usize {
    512
}

/// `DistilBertModel`: the last hidden state.
#[derive(Debug, Clone)]
pub struct DistilBertModel {
    pub word: Tensor,
    pub position: Tensor,
    pub norm: LayerNorm,
    pub layers: Vec<Layer>,
    pub dropout: f32,
    span: tracing::Span,
}

impl DistilBertModel {
    /// Loads from `vb` at the root (`DistilBertModel`) or under `distilbert.`.
    pub fn load(vb: VarBuilder, c: &Config) -> Result<DistilBertModel> {
        if !c.dim.is_multiple_of(c.n_heads) {
            candle_core::bail!("dim {} is not a multiple of n_heads {}", c.dim, c.n_heads);
        }
        let vb = super::base_builder(vb, &["distilbert"], "embeddings.word_embeddings.weight");
        let h = c.dim;
        let e = vb.pp("embeddings");
        let layers = (0..c.n_layers)
            .map(|i| {
                let l = vb.pp(format!("transformer.layer.{i}"));
                let a = l.pp("attention");
                let attention = SelfAttention::new(
                    Linear::load(a.pp("q_lin"), h, h)?,
                    Linear::load(a.pp("k_lin"), h, h)?,
                    Linear::load(a.pp("v_lin"), h, h)?,
                    Linear::load(a.pp("out_lin"), h, h)?,
                    c.n_heads,
                    c.attention_dropout,
                );
                Ok(Layer::new(
                    attention,
                    LayerNorm::load(l.pp("sa_layer_norm"), h, EPS)?,
                    Linear::load(l.pp("ffn.lin1"), h, c.hidden_dim)?,
                    Linear::load(l.pp("ffn.lin2"), c.hidden_dim, h)?,
                    LayerNorm::load(l.pp("output_layer_norm"), h, EPS)?,
                    c.activation,
                    c.dropout,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DistilBertModel {
            word: e.get((c.vocab_size, h), "word_embeddings.weight")?,
            position: e.get((c.max_position_embeddings, h), "position_embeddings.weight")?,
            norm: LayerNorm::load(e.pp("LayerNorm"), h, EPS)?,
            layers,
            dropout: c.dropout,
            span: tracing::trace_span!("distilbert"),
        })
    }

    /// The layers' input (embeddings) and the additive attention mask.
    pub fn inputs(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let _e = self.span.enter();
        let t = input_ids.dim(1)?;
        let x = {
            let _s = tracing::trace_span!("embeddings").entered();
            let positions = Tensor::arange(0u32, t as u32, input_ids.device())?.unsqueeze(0)?;
            let x = super::embed(&self.word, input_ids)?
                .broadcast_add(&super::embed(&self.position, &positions)?)?;
            super::dropout(&self.norm.forward(&x, train)?, self.dropout, train)?
        };
        Ok((x, super::additive_mask(attention_mask)?))
    }
}
