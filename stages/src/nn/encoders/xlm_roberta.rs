//! XLM-RoBERTa (and RoBERTa): BERT's layers and parameter names (under `roberta.` in task
//! checkpoints), with RoBERTa's position ids: padding tokens get `padding_idx` and real tokens
//! count up from `padding_idx + 1`, skipping pads (HF's `create_position_ids_from_input_ids`).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::Layer;
use super::bert::{self, Config, Embeddings};

/// `XLMRobertaModel` without the pooler: the last hidden state.
#[derive(Debug, Clone)]
pub struct XlmRobertaModel {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
    pub padding_idx: u32,
    span: tracing::Span,
}

impl XlmRobertaModel {
    pub fn load(vb: VarBuilder, c: &Config) -> Result<XlmRobertaModel> {
        bert::check(c)?;
        let vb = super::base_builder(vb, &["roberta"], "embeddings.word_embeddings.weight");
        Ok(XlmRobertaModel {
            embeddings: Embeddings::load(vb.pp("embeddings"), c)?,
            layers: bert::load_layers(vb, c)?,
            padding_idx: c.pad_token_id,
            span: tracing::trace_span!("xlm-roberta"),
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
        let positions = position_ids(input_ids, self.padding_idx)?;
        let x = self
            .embeddings
            .forward(input_ids, &positions, token_type_ids, train)?;
        Ok((x, super::additive_mask(attention_mask)?))
    }
}

/// `cumsum(ids != pad) * (ids != pad) + pad`, row by row (computed on the host: ids are small).
pub fn position_ids(input_ids: &Tensor, padding_idx: u32) -> Result<Tensor> {
    let rows = input_ids
        .to_dtype(candle_core::DType::U32)?
        .to_vec2::<u32>()?;
    let (b, t) = (rows.len(), rows.first().map_or(0, Vec::len));
    let mut out = Vec::with_capacity(b * t);
    for row in &rows {
        let mut n = 0;
        for &id in row {
            if id == padding_idx {
                out.push(padding_idx);
            } else {
                n += 1;
                out.push(padding_idx + n);
            }
        }
    }
    Tensor::from_vec(out, (b, t), input_ids.device())
}
