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
