//! Transformer encoders (BERT/MiniLM, DistilBERT, XLM-RoBERTa) written on candle-core/candle-nn,
//! loading Hugging Face `config.json` + `model.safetensors`, returning the last hidden state.
//!
//! Why our own and not candle-transformers': its DistilBERT inverts the mask and uses the tanh
//! GELU where HF uses erf, and the fine-tuning stage needs encoders that train. So every block
//! here has two paths chosen by `train`:
//! - `train = true`: only ops with a backward pass, dropout on. For f32 on CPU the layer stack
//!   is one op with a written-out backward ([`train_layers`]; the embeddings use the fused
//!   kernels of [`train_kernels`]); elsewhere candle's autograd over a layer norm and a softmax
//!   written from elementwise ops. There is no switch between the two on CPU: nothing outside
//!   a stage's fingerprint may change what it trains;
//! - `train = false`: the fast inference kernels (`candle_nn::ops::layer_norm`,
//!   `softmax_last_dim`, which have no backward in candle 0.11), dropout off.
//!
//! Parameters come from a [`VarBuilder`], so a `VarMap`-backed builder gives trainable `Var`s
//! and a safetensors-backed one gives frozen weights. The three families share the post-LN
//! layer ([`Layer`]); they differ in embeddings and parameter names (one file per family).
//!
//! Masks are always f32 and additive (0 for tokens, a large negative for padding): a half
//! precision mask turns into NaN. Scores are computed in f32 whatever the weights' dtype.

pub mod bert;
pub mod classifier;
pub mod cpu_kernels;
pub mod distilbert;
pub mod train_kernels;
pub mod train_layers;
pub mod xlm_roberta;

use std::path::Path;

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

/// Added to the attention scores of padding keys (finite: `-inf` would make a NaN gradient).
pub const MASKED: f32 = -1.0e30;

/// The activation of the feed-forward block, as HF's `hidden_act` / `activation` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact GELU with erf (HF `gelu`).
    #[default]
    Gelu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    Relu,
}

impl Activation {
    fn apply(self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Activation::Gelu if !train && fast_cpu(xs) => {
                xs.contiguous()?.apply_op1_no_bwd(&cpu_kernels::GeluErf)
            }
            Activation::Gelu if fast_cpu(xs) => xs.contiguous()?.apply_op1(train_kernels::Gelu),
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluNew => xs.gelu(),
            Activation::Relu => xs.relu(),
        }
    }
}

/// Whether the CPU inference kernels apply (f32 on CPU).
fn fast_cpu(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// Which family a `config.json` describes (its `model_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    DistilBert,
    XlmRoberta,
}

impl Family {
    /// From HF's `model_type`. BERT-shaped types (MiniLM checkpoints say `bert`) map to BERT,
    /// `roberta` / `xlm-roberta` / `camembert` to XLM-R's position scheme.
    pub fn from_model_type(t: &str) -> Option<Family> {
        match t {
            "bert" => Some(Family::Bert),
            "distilbert" => Some(Family::DistilBert),
            "xlm-roberta" | "roberta" | "camembert" => Some(Family::XlmRoberta),
            _ => None,
        }
    }
}

/// Parsed `config.json` of any supported family.
#[derive(Debug, Clone)]
pub enum Config {
    Bert(bert::Config),
    DistilBert(distilbert::Config),
    XlmRoberta(bert::Config),
}

/// Why a model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("{path}: model_type `{model_type}` is not supported (bert, distilbert, xlm-roberta)")]
    Unsupported { path: String, model_type: String },
    #[error(
        "{path}: not readable safetensors ({message}); the file is damaged or a git-lfs pointer: download the model again"
    )]
    Weights { path: String, message: String },
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

impl Config {
    /// Reads `config.json`; `model_type` picks the family.
    pub fn from_file(path: &Path) -> std::result::Result<Config, LoadError> {
        let shown = path.display().to_string();
        let err = |message: String| LoadError::Config {
            path: shown.clone(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let family =
            Family::from_model_type(&model_type).ok_or_else(|| LoadError::Unsupported {
                path: shown.clone(),
                model_type: model_type.clone(),
            })?;
        let parse_err = |e: serde_json::Error| err(format!("bad {model_type} config: {e}"));
        Ok(match family {
            Family::Bert => Config::Bert(serde_json::from_value(value).map_err(parse_err)?),
            Family::DistilBert => {
                Config::DistilBert(serde_json::from_value(value).map_err(parse_err)?)
            }
            Family::XlmRoberta => {
                Config::XlmRoberta(serde_json::from_value(value).map_err(parse_err)?)
            }
        })
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            Config::Bert(c) | Config::XlmRoberta(c) => c.hidden_size,
            Config::DistilBert(c) => c.dim,
        }
    }

    pub fn family(&self) -> Family {
        match self {
            Config::Bert(_) => Family::Bert,
            Config::DistilBert(_) => Family::DistilBert,
            Config::XlmRoberta(_) => Family::XlmRoberta,
        }
    }

    /// The padding token id the model was trained with.
    pub fn pad_token_id(&self) -> u32 {
        match self {
            Config::Bert(c) | Config::XlmRoberta(c) => c.pad_token_id,
            Config::DistilBert(c) => c.pad_token_id,
        }
    }

    /// Whether the model has token type embeddings worth feeding.
    pub fn uses_token_types(&self) -> bool {
        match self {
            Config::Bert(c) | Config::XlmRoberta(c) => c.type_vocab_size > 0,
            Config::DistilBert(_) => false,
        }
    }
}

/// An encoder of any supported family.
pub enum Encoder {
    Bert(bert::BertModel),
    DistilBert(distilbert::DistilBertModel),
    XlmRoberta(xlm_roberta::XlmRobertaModel),
}

impl Encoder {
    /// Builds the encoder `cfg` describes from `vb` (safetensors weights or a `VarMap`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Encoder> {
        Ok(match cfg {
            Config::Bert(c) => Encoder::Bert(bert::BertModel::load(vb, c)?),
            Config::DistilBert(c) => Encoder::DistilBert(distilbert::DistilBertModel::load(vb, c)?),
            Config::XlmRoberta(c) => {
                Encoder::XlmRoberta(xlm_roberta::XlmRobertaModel::load(vb, c)?)
            }
        })
    }

    /// Reads `config.json` and `model.safetensors` from a model directory.
    pub fn from_dir(
        dir: &Path,
        dtype: DType,
        device: &Device,
    ) -> std::result::Result<(Encoder, Config), LoadError> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is mapped read-only; cairn never writes into model directories.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], dtype, device) }
            .map_err(|e| LoadError::Weights {
                path: weights.display().to_string(),
                // candle repeats the path; keep its reason.
                message: e
                    .to_string()
                    .rsplit('"')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })?;
        Ok((Encoder::load(vb, &cfg)?, cfg))
    }

    /// Sets every dropout probability (embeddings, attention, hidden) to `p`, e.g. 0 to make
    /// a training-mode forward pass deterministic.
    pub fn set_dropout(&mut self, p: f32) {
        let layers = match self {
            Encoder::Bert(m) => {
                m.embeddings.dropout = p;
                &mut m.layers
            }
            Encoder::DistilBert(m) => {
                m.dropout = p;
                &mut m.layers
            }
            Encoder::XlmRoberta(m) => {
                m.embeddings.dropout = p;
                &mut m.layers
            }
        };
        for l in layers {
            l.dropout = p;
            l.attention.dropout = p;
        }
    }

    /// The last hidden state `[batch, seq, hidden]` (f32 unless the weights are another dtype).
    /// `input_ids`: u32 `[batch, seq]`; `attention_mask`: `[batch, seq]`, 1 for tokens and 0 for
    /// padding (any dtype); `token_type_ids`: u32 `[batch, seq]` (zeros when absent).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let (x, mask) = self.inputs(input_ids, attention_mask, token_type_ids, train)?;
        run_layers(self.layers(), x, &mask, train)
    }

    /// The first token's last hidden state `[batch, hidden]` in evaluation mode, as
    /// `forward(..)[:, 0]` but with the last layer run for that token only.
    pub fn first_token_state(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (x, mask) = self.inputs(input_ids, attention_mask, token_type_ids, false)?;
        first_token_state(self.layers(), x, &mask)
    }

    fn inputs(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        match self {
            Encoder::Bert(m) => m.inputs(input_ids, attention_mask, token_type_ids, train),
            Encoder::DistilBert(m) => m.inputs(input_ids, attention_mask, train),
            Encoder::XlmRoberta(m) => m.inputs(input_ids, attention_mask, token_type_ids, train),
        }
    }

    fn layers(&self) -> &[Layer] {
        match self {
            Encoder::Bert(m) => &m.layers,
            Encoder::DistilBert(m) => &m.layers,
            Encoder::XlmRoberta(m) => &m.layers,
        }
    }
}

/// `[batch, seq]` 1/0 mask to the additive f32 `[batch, 1, 1, seq]` mask the scores take.
pub fn additive_mask(attention_mask: &Tensor) -> Result<Tensor> {
    let m = attention_mask.to_dtype(DType::F32)?;
    let (b, t) = m.dims2()?;
    // (1 - m) * MASKED
    ((m.ones_like()? - m)? * MASKED as f64)?.reshape((b, 1, 1, t))
}

// ---------------------------------------------------------------------------------------------
// Shared blocks

/// `y = x W^T + b` over the last dimension, with a tracing span.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
    span: tracing::Span,
}

impl Linear {
    pub fn load(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Linear> {
        Ok(Linear {
            weight: vb.get((out_dim, in_dim), "weight")?,
            bias: vb.get(out_dim, "bias")?,
            span: tracing::trace_span!("linear"),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let _e = self.span.enter();
        linear(x, &self.weight, &self.bias)
    }
}

/// `x W^T + b` for `x` of any rank: flattened to one 2-D matmul (a batched matmul over a
/// broadcast weight is much slower on CPU).
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let k = *dims.last().expect("rank >= 1");
    let rows = x.elem_count() / k;
    let y = x
        .reshape((rows, k))?
        .matmul(&weight.t()?)?
        .broadcast_add(bias)?;
    let mut out = dims;
    *out.last_mut().expect("rank >= 1") = weight.dim(0)?;
    y.reshape(out)
}

/// Layer normalization over the last dimension (biased variance, as PyTorch).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
    span: tracing::Span,
}

impl LayerNorm {
    /// Reads `weight`/`bias`, or the `gamma`/`beta` of old checkpoints.
    pub fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<LayerNorm> {
        let (w, b) = if !vb.contains_tensor("weight") && vb.contains_tensor("gamma") {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        Ok(LayerNorm {
            weight: vb.get(dim, w)?,
            bias: vb.get(dim, b)?,
            eps,
            span: tracing::trace_span!("layer-norm"),
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let _e = self.span.enter();
        if train && fast_cpu(x) {
            x.contiguous()?.apply_op3(
                &self.weight,
                &self.bias,
                train_kernels::LayerNorm {
                    eps: self.eps as f32,
                },
            )
        } else if train {
            // Differentiable: every op here has a backward pass.
            let dtype = x.dtype();
            let x = x.to_dtype(DType::F32)?;
            let mean = x.mean_keepdim(D::Minus1)?;
            let centered = x.broadcast_sub(&mean)?;
            let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
            let normed = centered.broadcast_div(&(var + self.eps)?.sqrt()?)?;
            normed
                .to_dtype(dtype)?
                .broadcast_mul(&self.weight)?
                .broadcast_add(&self.bias)
        } else {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps as f32)
        }
    }
}

/// Softmax over the last dimension: differentiable ops in training, the fused kernel otherwise.
pub fn softmax_last(x: &Tensor, train: bool) -> Result<Tensor> {
    if train && fast_cpu(x) {
        x.contiguous()?.apply_op1(train_kernels::Softmax)
    } else if train {
        let max = x.max_keepdim(D::Minus1)?;
        let e = x.broadcast_sub(&max)?.exp()?;
        let sum = e.sum_keepdim(D::Minus1)?;
        e.broadcast_div(&sum)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

thread_local! {
    /// Dropout's generator. Seeded (see [`seed_dropout`]) so a fine-tune is reproducible from
    /// its `seed`; candle's own dropout draws from an unseedable generator. Thread-local
    /// because a forward pass runs on one thread (the kernels' worker threads never drop out).
    static DROPOUT_RNG: std::cell::RefCell<crate::ml::rng::Rng> =
        std::cell::RefCell::new(crate::ml::rng::Rng::new(0));
}

/// Restarts this thread's dropout stream from `seed`.
pub fn seed_dropout(seed: u64) {
    DROPOUT_RNG.with(|r| *r.borrow_mut() = crate::ml::rng::Rng::new(seed));
}

/// Inverted dropout (kept values scaled by 1/(1-p)); the identity outside training.
pub fn dropout(x: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    if !train {
        return Ok(x.clone());
    }
    match dropout_scales(x.elem_count(), p) {
        None => Ok(x.clone()),
        Some(scales) => {
            let mask = Tensor::from_vec(scales, x.shape(), x.device())?.to_dtype(x.dtype())?;
            x * mask
        }
    }
}

/// Inverted dropout's multipliers for `n` values, drawn from this thread's stream: 1/(1-p) to
/// keep, 0 to drop; `None` when nothing drops (p ≤ 0). p ≥ 1 drops all without drawing.
pub fn dropout_scales(n: usize, p: f32) -> Option<Vec<f32>> {
    if p <= 0.0 {
        return None;
    }
    if p >= 1.0 {
        return Some(vec![0.0; n]);
    }
    let scale = 1.0 / (1.0 - p);
    // Keep when a 32-bit draw is below (1-p)·2³²; two draws per 64-bit number.
    let threshold = ((1.0 - p as f64) * 4_294_967_296.0) as u64;
    let mut mask = Vec::with_capacity(n);
    DROPOUT_RNG.with(|r| {
        let mut rng = r.borrow_mut();
        while mask.len() < n {
            let z = rng.next_u64();
            for half in [z & 0xffff_ffff, z >> 32] {
                if mask.len() < n {
                    mask.push(if half < threshold { scale } else { 0.0 });
                }
            }
        }
    });
    Some(mask)
}

/// Multi-head self-attention: separate Q/K/V projections (as the checkpoints store them),
/// one fused QKV matmul in the forward pass.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub heads: usize,
    pub dropout: f32,
    span: tracing::Span,
}

impl SelfAttention {
    pub fn new(
        query: Linear,
        key: Linear,
        value: Linear,
        output: Linear,
        heads: usize,
        dropout: f32,
    ) -> SelfAttention {
        SelfAttention {
            query,
            key,
            value,
            output,
            heads,
            dropout,
            span: tracing::trace_span!("self-attention"),
        }
    }

    /// `x`: `[b, t, h]`; `mask`: additive f32 `[b, 1, 1, t]`. Returns the output projection
    /// (before dropout / residual), `[b, t, h]`.
    pub fn forward(&self, x: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let _e = self.span.enter();
        self.output.forward(&self.context(x, mask, train)?)
    }

    /// The heads' outputs side by side, `[b, t, h]`: the output projection's input.
    pub fn context(&self, x: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let dh = h / self.heads;
        let w = Tensor::cat(
            &[&self.query.weight, &self.key.weight, &self.value.weight],
            0,
        )?;
        let bias = Tensor::cat(&[&self.query.bias, &self.key.bias, &self.value.bias], 0)?;
        let qkv = linear(x, &w, &bias)?;
        if !train && fast_cpu(&qkv) {
            let mask = mask.reshape((b, t))?;
            return qkv.apply_op2_no_bwd(&mask, &cpu_kernels::FusedAttention { heads: self.heads });
        }
        // [b, t, 3, heads, dh] -> [3, b, heads, t, dh]
        let qkv = qkv
            .reshape((b, t, 3, self.heads, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let q = (qkv.get(0)?.contiguous()? * (1.0 / (dh as f64).sqrt()))?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let dtype = q.dtype();
        let scores = q.matmul(&k.t()?)?.to_dtype(DType::F32)?;
        let scores = scores.broadcast_add(mask)?;
        let probs = softmax_last(&scores, train)?.to_dtype(dtype)?;
        let probs = dropout(&probs, self.dropout, train)?;
        probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, h))
    }
}

/// A post-LN transformer layer: `x = LN(x + drop(attn(x)))`, `x = LN(x + drop(ffn(x)))`.
/// BERT, DistilBERT and XLM-R all have this shape; only the parameter names differ.
#[derive(Debug, Clone)]
pub struct Layer {
    pub attention: SelfAttention,
    pub attention_norm: LayerNorm,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
    pub output_norm: LayerNorm,
    pub activation: Activation,
    pub dropout: f32,
    span: tracing::Span,
}

impl Layer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        attention: SelfAttention,
        attention_norm: LayerNorm,
        ffn_in: Linear,
        ffn_out: Linear,
        output_norm: LayerNorm,
        activation: Activation,
        dropout: f32,
    ) -> Layer {
        Layer {
            attention,
            attention_norm,
            ffn_in,
            ffn_out,
            output_norm,
            activation,
            dropout,
            span: tracing::trace_span!("layer"),
        }
    }

    pub fn forward(&self, x: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let _e = self.span.enter();
        let a = self.attention.forward(x, mask, train)?;
        let x = self
            .attention_norm
            .forward(&(dropout(&a, self.dropout, train)? + x)?, train)?;
        let f = {
            let _s = tracing::trace_span!("ffn").entered();
            let i = self.ffn_in.forward(&x)?;
            self.ffn_out.forward(&self.activation.apply(&i, train)?)?
        };
        self.output_norm
            .forward(&(dropout(&f, self.dropout, train)? + x)?, train)
    }

    /// The first token's output `[b, h]` (evaluation mode): keys and values come from every
    /// token, but the rest of the layer runs for the first token only, the only row a [CLS]
    /// readout needs. Row for row the same arithmetic as [`Layer::forward`].
    pub fn forward_first_token(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let _e = self.span.enter();
        let first = |t: &Tensor| t.narrow(1, 0, 1)?.contiguous();
        let ctx = first(&self.attention.context(x, mask, false)?)?;
        let a = self.attention.output.forward(&ctx)?;
        let x = self.attention_norm.forward(&(a + first(x)?)?, false)?;
        let f = self
            .ffn_out
            .forward(&self.activation.apply(&self.ffn_in.forward(&x)?, false)?)?;
        self.output_norm.forward(&(f + x)?, false)?.squeeze(1)
    }
}

/// The first token's last hidden state `[b, h]` (evaluation mode), the last layer run for that
/// token only (see [`Layer::forward_first_token`]).
pub fn first_token_state(layers: &[Layer], x: Tensor, mask: &Tensor) -> Result<Tensor> {
    match layers.split_last() {
        Some((last, rest)) => last.forward_first_token(&run_layers(rest, x, mask, false)?, mask),
        None => x.narrow(1, 0, 1)?.squeeze(1),
    }
}

/// Runs `layers` in order.
pub fn run_layers(layers: &[Layer], x: Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
    if train && train_layers::applies(layers, &x) {
        return train_layers::run(layers, &x, mask);
    }
    layers
        .iter()
        .try_fold(x, |x, layer| layer.forward(&x, mask, train))
}

/// The embedding table lookup `table[ids]` for ids of any shape.
pub fn embed(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let dims = ids.dims().to_vec();
    let h = table.dim(1)?;
    let flat = table.index_select(&ids.flatten_all()?, 0)?;
    let mut out = dims;
    out.push(h);
    flat.reshape(out)
}

/// The prefix under which a checkpoint stores the encoder: none for `BertModel`, `bert.` for
/// `BertForSequenceClassification`, etc. The first of `prefixes` whose `probe` exists wins.
pub fn base_builder<'a>(vb: VarBuilder<'a>, prefixes: &[&str], probe: &str) -> VarBuilder<'a> {
    for p in prefixes {
        let candidate = vb.pp(*p);
        if candidate.contains_tensor(probe) {
            return candidate;
        }
    }
    vb
}

#[cfg(test)]
mod tests;

/// The candle device for the engine's choice.
pub fn candle_device(
    device: crate::api::Device,
) -> std::result::Result<candle_core::Device, crate::api::StageError> {
    use crate::api::{Device, StageError};
    match device {
        Device::Cpu => Ok(candle_core::Device::Cpu),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => candle_core::Device::new_cuda(i)
            .map_err(|e| StageError::failed(format!("cannot open cuda:{i}: {e}"))),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(i) => Err(StageError::failed(format!(
            "cuda:{i} asked for, but this cairn was built without the `cuda` feature"
        ))),
    }
}
