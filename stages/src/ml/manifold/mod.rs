//! Manifold learning for the `project` stage: exact kNN, UMAP, PCA and the trustworthiness
//! score, on dense f32 matrices. Pure Rust; the one heavy kernel (matmul) is the `gemm` crate.
//!
//! Why not the `umap-rs` crate (0.4.5, BSD-3): its SGD draws negative samples from
//! `rand::rng()` (thread-local, unseeded) across rayon threads, so layouts cannot be reproduced
//! from a seed, and it brings ndarray, sprs, dashmap and indicatif for what is ~500 lines here.

pub mod eigen;
pub mod knn;
pub mod pca;
pub mod spectral;
pub mod trust;
pub mod umap;
