//! Dense row-major f32 matrices, and the Arrow columns they come from and go to: a feature
//! column is `FixedSizeList<Float32>[d]` (one vector per row), which numeric stages (scale,
//! project, classify, evaluate) read as one contiguous `n × d` buffer.
//!
//! Every reader here refuses NaN and infinities ([`check_finite`]), naming the split, row and
//! column: one NaN row otherwise turns a fit into all-zero weights or a projection into all-NaN
//! coordinates, and the run still "succeeds".

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type};
use arrow::record_batch::RecordBatch;

use crate::api::StageError;
use crate::columns::table;

/// `rows × cols` values, row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
        assert_eq!(data.len(), rows * cols, "matrix shape");
        Matrix { rows, cols, data }
    }

    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix::new(rows, cols, vec![0.0; rows * cols])
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Column `j` as a vector.
    pub fn column(&self, j: usize) -> Vec<f32> {
        (0..self.rows)
            .map(|i| self.data[i * self.cols + j])
            .collect()
    }
}

/// A `FixedSizeList<float>` column (f32, or f16/f64 cast to f32) as a matrix. Null rows, null
/// values and non-finite values are errors: a feature vector with holes cannot be scaled or
/// projected.
pub fn read(batch: &RecordBatch, name: &str, split: &str) -> Result<Matrix, StageError> {
    let col = table::column(batch, name, split)?;
    let wrong = || {
        StageError::failed(format!(
            "column `{name}` of split `{split}` is {}, expected FixedSizeList<Float32> (feature vectors)",
            col.data_type()
        ))
    };
    let DataType::FixedSizeList(inner, d) = col.data_type() else {
        return Err(wrong());
    };
    if !inner.data_type().is_floating() {
        return Err(wrong());
    }
    let list = col.as_fixed_size_list();
    if list.null_count() > 0 {
        return Err(StageError::failed(format!(
            "column `{name}` of split `{split}` has {} null rows",
            list.null_count()
        )));
    }
    let d = *d as usize;
    // The child array may be longer than rows × d when the list is a slice.
    let values = list.values().slice(list.offset() * d, list.len() * d);
    let values = arrow::compute::cast(&values, &DataType::Float32)?;
    if values.null_count() > 0 {
        return Err(StageError::failed(format!(
            "column `{name}` of split `{split}` has null values inside its vectors"
        )));
    }
    let values = values.as_primitive::<Float32Type>();
    check_finite(values.values(), Some(d), name, split)?;
    Ok(Matrix::new(list.len(), d, values.values().to_vec()))
}

/// A `fixed_size_list<float>` (or `list<float>` of equal lengths) column as a row-major f64
/// matrix and its width, for scores that want f64 (classifier features, probabilities,
/// logits). Null rows and non-finite values are errors.
pub fn read_f64(
    batch: &RecordBatch,
    name: &str,
    split: &str,
) -> Result<(Vec<f64>, usize), StageError> {
    let col = table::column(batch, name, split)?;
    let wrong = || {
        StageError::failed(format!(
            "column `{name}` of split `{split}` is {}, expected fixed_size_list<float32>",
            col.data_type()
        ))
    };
    if col.null_count() > 0 {
        return Err(StageError::failed(format!(
            "column `{name}` of split `{split}` has {} null rows",
            col.null_count()
        )));
    }
    let (values, width) = match col.data_type() {
        DataType::FixedSizeList(f, w) if f.data_type().is_floating() => {
            let list = col.as_fixed_size_list();
            let w = *w as usize;
            let start = list.offset() * w;
            (list.values().slice(start, list.len() * w), w)
        }
        DataType::List(f) if f.data_type().is_floating() => {
            let list = col.as_list::<i32>();
            let offsets = list.value_offsets();
            let w = if list.is_empty() {
                0
            } else {
                (offsets[1] - offsets[0]) as usize
            };
            if offsets.windows(2).any(|o| (o[1] - o[0]) as usize != w) {
                return Err(StageError::failed(format!(
                    "column `{name}` of split `{split}` has lists of different lengths"
                )));
            }
            let start = offsets[0] as usize;
            (list.values().slice(start, list.len() * w), w)
        }
        _ => return Err(wrong()),
    };
    let values = arrow::compute::cast(&values, &DataType::Float64)?;
    let values = values.as_primitive::<Float64Type>().values().to_vec();
    check_finite(&values, Some(width), name, split)?;
    Ok((values, width))
}

/// A float column as f64 per row, `None` where null (e.g. the loss of an unlabelled row).
/// Non-finite values are errors.
pub fn read_scalars(
    batch: &RecordBatch,
    name: &str,
    split: &str,
) -> Result<Vec<Option<f64>>, StageError> {
    let col = table::column(batch, name, split)?;
    if !col.data_type().is_floating() {
        return Err(StageError::failed(format!(
            "column `{name}` of split `{split}` is {}, expected float",
            col.data_type()
        )));
    }
    let col = arrow::compute::cast(col, &DataType::Float64)?;
    let values: Vec<Option<f64>> = col.as_primitive::<Float64Type>().iter().collect();
    if let Some((row, v)) = values
        .iter()
        .enumerate()
        .find_map(|(i, v)| v.filter(|v| !v.is_finite()).map(|v| (i, v)))
    {
        return Err(non_finite(split, row, name, None, v));
    }
    Ok(values)
}

/// Fails on the first NaN or infinity of row-major `values`: `width` values per row of a vector
/// column (`name[j]` in the message), or `None` for a column of scalars (`name`). The message
/// names the split, the row and the column, e.g. ``split `train`, row 17, column
/// `hidden_state[203]` is NaN``; the engine puts the stage in front.
pub fn check_finite<T: Copy + Into<f64>>(
    values: &[T],
    width: Option<usize>,
    name: &str,
    split: &str,
) -> Result<(), StageError> {
    let Some(i) = values.iter().position(|&v| !v.into().is_finite()) else {
        return Ok(());
    };
    let (row, index) = match width {
        Some(w) => (i / w.max(1), Some(i % w.max(1))),
        None => (i, None),
    };
    Err(non_finite(split, row, name, index, values[i].into()))
}

fn non_finite(split: &str, row: usize, name: &str, index: Option<usize>, value: f64) -> StageError {
    let what = if value.is_nan() {
        "NaN"
    } else if value > 0.0 {
        "+inf"
    } else {
        "-inf"
    };
    let column = match index {
        Some(j) => format!("{name}[{j}]"),
        None => name.to_string(),
    };
    StageError::failed(format!(
        "split `{split}`, row {row}, column `{column}` is {what}; numeric stages take finite values only (look at the stage that produced `{name}`)"
    ))
}

/// `m` as a `FixedSizeList<Float32>[cols]` column whose item field is `item` (pass the input's to
/// keep the column's type exactly as it was).
pub fn to_column(m: Matrix, item: Option<Arc<Field>>) -> ArrayRef {
    let item = item.unwrap_or_else(|| Arc::new(Field::new_list_field(DataType::Float32, false)));
    let item = Arc::new(item.as_ref().clone().with_data_type(DataType::Float32));
    Arc::new(FixedSizeListArray::new(
        item,
        m.cols as i32,
        Arc::new(Float32Array::from(m.data)),
        None,
    ))
}

/// The item field of a `FixedSizeList` column, to hand back to [`to_column`].
pub fn item_field(batch: &RecordBatch, name: &str) -> Option<Arc<Field>> {
    match batch.column_by_name(name)?.data_type() {
        DataType::FixedSizeList(f, _) => Some(f.clone()),
        _ => None,
    }
}

/// `C = A · Bᵀ` for row-major `a` (`m × k`) and `b` (`n × k`), written into `c` (`m × n`,
/// row-major). One gemm call, threaded by rayon.
pub fn matmul_transposed<T: Copy + Default + 'static>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    one: T,
) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(T::default());
        return;
    }
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above bound every index gemm touches: A is m×k with row stride k,
    // Bᵀ is read as k×n from B's rows (column stride k, row stride 1), C is m×n with row stride n.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            T::default(),
            one,
            false,
            false,
            false,
            par,
        );
    }
}

/// `fixed_size_list<float32>[width]` from row-major values.
pub fn fixed_size_list_f32(values: Vec<f32>, width: usize) -> ArrayRef {
    let field = Arc::new(Field::new_list_field(DataType::Float32, false));
    Arc::new(FixedSizeListArray::new(
        field,
        width as i32,
        Arc::new(Float32Array::from(values)),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_round_trip_and_matmul() {
        let m = Matrix::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let col = to_column(m.clone(), None);
        let batch = RecordBatch::try_from_iter([("h", col)]).unwrap();
        assert_eq!(read(&batch, "h", "train").unwrap(), m);
        let sliced = batch.slice(1, 1);
        assert_eq!(
            read(&sliced, "h", "train").unwrap().data,
            vec![4.0, 5.0, 6.0]
        );

        let mut c = vec![0.0f32; 4];
        matmul_transposed(&m.data, &m.data, &mut c, 2, 2, 3, 1.0);
        assert_eq!(c, vec![14.0, 32.0, 32.0, 77.0]);
        let err = read(&batch, "nope", "train").unwrap_err().to_string();
        assert!(err.contains("no column `nope`"), "{err}");
    }

    #[test]
    fn non_finite_values_are_refused_with_split_row_and_column() {
        let m = Matrix::new(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, f32::NAN]);
        let batch = RecordBatch::try_from_iter([("h", to_column(m, None))]).unwrap();
        let want = "split `train`, row 2, column `h[1]` is NaN";
        for err in [
            read(&batch, "h", "train").unwrap_err(),
            read_f64(&batch, "h", "train").unwrap_err(),
        ] {
            assert!(err.to_string().starts_with(want), "{err}");
        }
        // A slice that leaves the NaN row out is fine.
        assert!(read(&batch.slice(0, 2), "h", "train").is_ok());
        let loss: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![
            Some(0.5),
            None,
            Some(f64::NEG_INFINITY),
        ]));
        let batch = RecordBatch::try_from_iter([("loss", loss)]).unwrap();
        let err = read_scalars(&batch, "loss", "validation")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("split `validation`, row 2, column `loss` is -inf"),
            "{err}"
        );
        assert!(check_finite(&[1.0f64, f64::INFINITY], None, "x", "t").is_err());
        assert!(check_finite(&[1.0f32, 2.0], Some(2), "x", "t").is_ok());
    }
}
