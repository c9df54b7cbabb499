//! Small numeric helpers the kinds and the neural-network code share, written once so that a
//! tie is broken the same way everywhere.

/// The index of the largest value; the first one on ties (as numpy's `argmax`). NaN never wins
/// over an earlier value. Empty: 0.
pub fn argmax<T: PartialOrd>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// scikit-learn's `class_weight="balanced"` from the class counts: n / (k · count) per class,
/// 0 for a class with no rows (it contributes nothing either way).
pub fn balanced_weights(counts: &[usize]) -> Vec<f64> {
    let n: usize = counts.iter().sum();
    let k = counts.len() as f64;
    counts
        .iter()
        .map(|&c| match c {
            0 => 0.0,
            c => n as f64 / (k * c as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[1.0f32, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[0.5f64, f64::NAN, 0.7]), 2);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 0);
        assert_eq!(argmax::<f64>(&[]), 0);
    }
}
