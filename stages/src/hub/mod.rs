//! Models and tokenizers by reference: a local directory or a Hugging Face Hub id, resolved
//! offline from the Hub cache or downloaded, and pretrained tokenizers loaded the way Python
//! `transformers` loads them.

pub mod model;
pub mod pretrained;
