//! Scores as the reference libraries compute them: scikit-learn's classification metrics and
//! seqeval's entity-level F1.

pub mod scores;
pub mod seqeval;
