//! Transformer encoders on candle: the model families (one file each), what a checkpoint's
//! config allows as input, fine-tuning (trainable variables, batching, loss, AdamW and its
//! schedule), the prediction tables of a split, and predictions from a fine-tuned model.

pub mod encoders;
pub mod limits;
pub mod optim;
pub mod predict;
pub mod prediction_table;
pub mod simd;
pub mod training;
#[cfg(test)]
mod training_fidelity;
