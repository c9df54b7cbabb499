//! Arrow tables as the stages read and write them: typed column access with errors that name
//! the column, dense vector columns as matrices, label names in schema metadata, the token
//! columns `tokenize` leaves for the encoders, and a first look at a table.

pub mod inspect;
pub mod labels;
pub mod matrix;
pub mod table;
pub mod tokens;
