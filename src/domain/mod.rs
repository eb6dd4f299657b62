//! The product's values, free of HTTP and storage: readings, batches and exact aggregates.

pub mod aggregate;
pub mod batch;
pub mod line_batch;
pub mod line_protocol;
pub mod reading;

pub use aggregate::{Aggregate, Stats};
pub use batch::{Batch, BatchError, Checked, Conflict, InvalidReading, MAX_BATCH, Partial};
pub use reading::{Field, Reading, SensorId, Temperature, Timestamp};
