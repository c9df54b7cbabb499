//! Classical machine learning on dense f32 matrices, written to give scikit-learn's and
//! umap-learn's numbers: L-BFGS, logistic regression, manifold learning (kNN, UMAP, PCA,
//! trustworthiness) and the seeded generator they and training draw from.

pub mod lbfgs;
pub mod logreg;
pub mod manifold;
pub mod rng;
