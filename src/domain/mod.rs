//! The product's values, free of HTTP and storage: readings, batches, exact aggregates, sensor
//! summaries, rollup levels and the planning of time windows and series over them.

pub mod aggregate;
pub mod batch;
mod batch_body;
mod fixed_time;
pub mod line_batch;
pub mod line_protocol;
pub mod reading;
pub mod retention;
pub mod rollup;
pub mod summary;
pub mod window;

pub use aggregate::{Aggregate, Stats};
pub use batch::{Batch, BatchError, Checked, Conflict, InvalidReading, MAX_BATCH, Partial};
pub use reading::{Field, Reading, SensorId, Temperature, Timestamp};
pub use summary::{Point, SensorSummary};
