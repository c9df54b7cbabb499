//! Dense row-major f32 matrices, and the Arrow columns they come from and go to: a feature
//! column is `FixedSizeList<Float32>[d]` (one vector per row), which numeric stages (scale,
//! project, classify) read as one contiguous `n × d` buffer.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array};
use arrow::datatypes::{DataType, Field, Float32Type};
use arrow::record_batch::RecordBatch;

use crate::api::StageError;
use crate::table;

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

/// A `FixedSizeList<float>` column (f32, or f16/f64 cast to f32) as a matrix. Null rows or null
/// values are an error: a feature vector with holes cannot be scaled or projected.
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
    Ok(Matrix::new(list.len(), d, values.values().to_vec()))
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
}
