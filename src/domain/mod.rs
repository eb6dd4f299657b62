//! The product's values, free of HTTP and storage: readings, batches and exact aggregates.

pub mod aggregate;
pub mod batch;
pub mod reading;

pub use aggregate::{Aggregate, Stats};
pub use batch::{Batch, BatchError, Conflict, MAX_BATCH};
pub use reading::{Reading, SensorId, Temperature, Timestamp};
