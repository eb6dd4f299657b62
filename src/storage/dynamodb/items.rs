//! The `/picus` items: JSON objects under ids from an atomic counter item.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde_json::{Map, Value};

use super::attributes::{key, number, parse_item, string_of};
use super::schema::{
    self, COUNTER_PK, COUNTER_VALUE, ITEM_JSON, ITEM_PK, PICUS_COUNTER_SK, SORT_KEY,
};
use super::{DynamoStore, query, sdk_error};
use crate::storage::{ItemId, ItemsPage, StorageError, trim_page};

impl DynamoStore {
    /// A new id from the counter item (`ADD n :1`, atomic across instances), then the item
    /// under it. Two calls, not one transaction: a failure between them only skips an id.
    pub async fn item_put(&self, item: Map<String, Value>) -> Result<ItemId, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .update_item()
            .table_name(&inner.table)
            .set_key(Some(key(COUNTER_PK, PICUS_COUNTER_SK)))
            .update_expression("ADD #n :one")
            .expression_attribute_names("#n", COUNTER_VALUE)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        let id = output
            .attributes()
            .and_then(|a| number(a, COUNTER_VALUE).transpose())
            .transpose()?
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| StorageError::Internal("the id counter returned no value".into()))?;
        let mut stored = key(ITEM_PK, schema::item_sk(id));
        stored.insert(
            ITEM_JSON.into(),
            AttributeValue::S(Value::Object(item).to_string()),
        );
        inner.count();
        inner
            .client
            .put_item()
            .table_name(&inner.table)
            .set_item(Some(stored))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(id)
    }

    pub async fn item_get(&self, id: ItemId) -> Result<Option<Map<String, Value>>, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .get_item()
            .table_name(&inner.table)
            .set_key(Some(key(ITEM_PK, schema::item_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        output.item().map(|item| parse_item(id, item)).transpose()
    }

    pub async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<ItemsPage, StorageError> {
        let empty = ItemsPage {
            items: Vec::new(),
            next: None,
        };
        if limit == 0 {
            return Ok(empty);
        }
        let lower = match after {
            Some(after) => match after.checked_add(1) {
                Some(next) => schema::item_sk(next),
                None => return Ok(empty),
            },
            None => schema::item_sk(0),
        };
        let wanted = limit.saturating_add(1);
        let mut items = Vec::with_capacity(wanted.min(1_024));
        // Item sort keys are digits: "~" sorts after all of them.
        // Boxed for the same reason as in `readings`.
        let found = query::query(
            &self.inner,
            ITEM_PK.into(),
            Some((lower, "~".into())),
            Some(wanted),
        );
        for item in Box::pin(found).await? {
            let sk = string_of(&item, SORT_KEY)?;
            let id: ItemId = sk
                .parse()
                .map_err(|_| StorageError::Internal(format!("corrupt item id {sk:?}")))?;
            items.push((id, parse_item(id, &item)?));
        }
        let (items, next) = trim_page(items, limit, |(id, _)| *id);
        Ok(ItemsPage { items, next })
    }

    /// Deletes an item; `false` when it did not exist.
    pub async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .delete_item()
            .table_name(&inner.table)
            .set_key(Some(key(ITEM_PK, schema::item_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(output.attributes().is_some_and(|a| !a.is_empty()))
    }
}
