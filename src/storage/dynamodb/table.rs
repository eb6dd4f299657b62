//! Start-up: the table must exist with the key schema of [`super::schema`]; it is created
//! when allowed (`DYNAMODB_CREATE_TABLE=true`, local runs) and waited for until ACTIVE.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription, TableStatus,
};

use super::Inner;
use super::schema::{PARTITION_KEY, SORT_KEY};
use crate::storage::{Cause, StorageError};

/// How long start-up waits for a table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn startup(message: impl Into<String>) -> StorageError {
    StorageError::Unavailable(message.into().into())
}

/// Start-up: the table must exist with the key schema of [`schema`]; create it when allowed.
pub(super) async fn ensure_table(inner: &Inner, create: bool) -> Result<(), StorageError> {
    let table = &inner.table;
    let description = match describe(inner).await? {
        Some(description) => description,
        None if create => {
            tracing::info!(
                table,
                "creating the DynamoDB table (DYNAMODB_CREATE_TABLE=true)"
            );
            create_table(inner).await?;
            wait_until_active(inner).await?
        }
        None => {
            return Err(startup(format!(
                "DynamoDB table {table:?} does not exist (Terraform creates it on AWS; set \
                 DYNAMODB_CREATE_TABLE=true to create it for a local run)"
            )));
        }
    };
    check_key_schema(table, &description)?;
    if description.table_status() != Some(&TableStatus::Active) {
        wait_until_active(inner).await?;
    }
    Ok(())
}

/// `None` when the table does not exist.
async fn describe(inner: &Inner) -> Result<Option<TableDescription>, StorageError> {
    inner.count();
    match inner
        .client
        .describe_table()
        .table_name(&inner.table)
        .send()
        .await
    {
        Ok(output) => Ok(output.table().cloned()),
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(DescribeTableError::ResourceNotFoundException(_))
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(StorageError::Unavailable(Cause::new(
            format!("cannot describe DynamoDB table {:?}", inner.table),
            error,
        ))),
    }
}

async fn create_table(inner: &Inner) -> Result<(), StorageError> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| {
        StorageError::Internal(Cause::new("building CreateTable", e))
    };
    inner.count();
    let result = inner
        .client
        .create_table()
        .table_name(&inner.table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(PARTITION_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(SORT_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(PARTITION_KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(SORT_KEY)
                .key_type(KeyType::Range)
                .build()
                .map_err(build)?,
        )
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Another instance created it first: fine, its key schema is checked next.
        Err(error) if error.code() == Some("ResourceInUseException") => Ok(()),
        Err(error) => Err(StorageError::Unavailable(Cause::new(
            format!("cannot create DynamoDB table {:?}", inner.table),
            error,
        ))),
    }
}

/// Polls `DescribeTable` (the SDK's waiter polls every 20 s, far too slow for start-up).
async fn wait_until_active(inner: &Inner) -> Result<TableDescription, StorageError> {
    let deadline = Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        if let Some(description) = describe(inner).await?
            && description.table_status() == Some(&TableStatus::Active)
        {
            return Ok(description);
        }
        if Instant::now() > deadline {
            return Err(startup(format!(
                "DynamoDB table {:?} is not ACTIVE after {TABLE_ACTIVE_TIMEOUT:?}",
                inner.table
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn check_key_schema(table: &str, description: &TableDescription) -> Result<(), StorageError> {
    let keys: Vec<(String, String)> = description
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    let types: HashMap<&str, &str> = description
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    let expected = [
        (PARTITION_KEY.to_owned(), "HASH".to_owned()),
        (SORT_KEY.to_owned(), "RANGE".to_owned()),
    ];
    let typed = types.get(PARTITION_KEY) == Some(&"S") && types.get(SORT_KEY) == Some(&"S");
    if keys.as_slice() != expected.as_slice() || !typed {
        return Err(startup(format!(
            "DynamoDB table {table:?} has the wrong key schema: found {keys:?} with types \
             {types:?}; expected partition key {PARTITION_KEY:?} (S) and sort key {SORT_KEY:?} \
             (S), see src/storage/dynamodb/schema.rs"
        )));
    }
    Ok(())
}
