//! Windows, series and sensor summaries on DynamoDB.

use super::DynamoStore;
use crate::domain::window::{SeriesPlan, Span};
use crate::domain::{Aggregate, SensorId, SensorSummary};
use crate::storage::{SensorsPage, StorageError};

fn pending() -> StorageError {
    StorageError::Internal("windows are not implemented on DynamoDB yet".into())
}

impl DynamoStore {
    pub async fn window_stats(
        &self,
        _sensor: Option<&SensorId>,
        _window: Span,
    ) -> Result<Aggregate, StorageError> {
        Err(pending())
    }

    pub async fn series(
        &self,
        _sensor: Option<&SensorId>,
        _plan: &SeriesPlan,
    ) -> Result<Vec<Aggregate>, StorageError> {
        Err(pending())
    }

    pub async fn sensors(
        &self,
        _after: Option<&SensorId>,
        _limit: usize,
    ) -> Result<SensorsPage, StorageError> {
        Err(pending())
    }

    pub async fn sensor(&self, _sensor: &SensorId) -> Result<Option<SensorSummary>, StorageError> {
        Err(pending())
    }
}
