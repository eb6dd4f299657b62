//! A page of `/picus` items, bounded by bytes as well as by count, which both backends fill the
//! same way: items in id order are offered one at a time, and the page stops at `limit` items
//! or before the item whose text would take the page's item text past `max_bytes` — so one
//! request holds about `max_bytes` of item text, however large the items or the limit. A page
//! always takes its first item, so an item larger than the budget is still listed, alone.
//!
//! Item text stays the JSON text that was stored: it is checked to be an object and handed
//! back as a [`RawValue`], never parsed into values and serialised again.

use serde_json::value::RawValue;

use super::{ItemId, ItemsPage, StorageError};

/// A stored item: the JSON object's text, as stored.
pub type ItemText = Box<RawValue>;

/// The stored `text` of item `id` as an [`ItemText`]; an error when it is not a JSON object.
pub fn item_text(id: ItemId, text: &str) -> Result<ItemText, StorageError> {
    let corrupt = || StorageError::Internal(format!("corrupt item {id}").into());
    if !text.starts_with('{') {
        return Err(corrupt());
    }
    RawValue::from_string(text.to_owned()).map_err(|_| corrupt())
}

/// Fills one page from items offered in id order.
pub struct ItemPageBuilder {
    limit: usize,
    max_bytes: usize,
    bytes: usize,
    items: Vec<(ItemId, ItemText)>,
    full: bool,
}

impl ItemPageBuilder {
    pub fn new(limit: usize, max_bytes: usize) -> Self {
        Self {
            limit,
            max_bytes,
            bytes: 0,
            items: Vec::new(),
            full: false,
        }
    }

    /// Items taken so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Offers the next item; `false` once the page is full, and then the item is not taken
    /// (the page's cursor then says that more follow). Stop offering after a `false`.
    pub fn offer(&mut self, id: ItemId, text: &str) -> Result<bool, StorageError> {
        let over_budget = self.bytes.saturating_add(text.len()) > self.max_bytes;
        if self.items.len() >= self.limit || (!self.items.is_empty() && over_budget) {
            self.full = true;
            return Ok(false);
        }
        self.items.push((id, item_text(id, text)?));
        self.bytes = self.bytes.saturating_add(text.len());
        Ok(true)
    }

    /// The page; its `next` is present only when an item was refused for want of room.
    pub fn finish(self) -> ItemsPage {
        let next = if self.full {
            self.items.last().map(|(id, _)| *id)
        } else {
            None
        };
        ItemsPage {
            items: self.items,
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: usize, max_bytes: usize, sizes: &[usize]) -> (Vec<ItemId>, Option<ItemId>) {
        let mut builder = ItemPageBuilder::new(limit, max_bytes);
        for (index, size) in sizes.iter().enumerate() {
            let text = format!("{{\"a\":\"{}\"}}", "x".repeat(size - 8));
            assert_eq!(text.len(), *size);
            if !builder.offer(index as ItemId + 1, &text).unwrap() {
                break;
            }
        }
        let page = builder.finish();
        (page.items.iter().map(|(id, _)| *id).collect(), page.next)
    }

    #[test]
    fn a_page_stops_at_the_limit_or_before_the_byte_budget() {
        assert_eq!(page(2, 1000, &[10, 10, 10]), (vec![1, 2], Some(2)));
        assert_eq!(page(10, 25, &[10, 10, 10]), (vec![1, 2], Some(2)));
        assert_eq!(page(10, 30, &[10, 10, 10]), (vec![1, 2, 3], None));
        assert_eq!(page(3, 30, &[10, 10, 10]), (vec![1, 2, 3], None));
        assert_eq!(page(10, 30, &[]), (vec![], None));
    }

    #[test]
    fn an_item_larger_than_the_budget_is_a_page_of_its_own() {
        assert_eq!(page(10, 5, &[10, 10]), (vec![1], Some(1)));
        assert_eq!(page(10, 15, &[10, 20, 10]), (vec![1], Some(1)));
    }

    #[test]
    fn item_text_is_kept_as_stored_and_must_be_an_object() {
        let text = r#"{"v": 1e-400, "w":999999999.99999999}"#;
        assert_eq!(item_text(1, text).unwrap().get(), text);
        for corrupt in ["", "[1]", "{", "\"a\"", " {}"] {
            assert!(item_text(1, corrupt).is_err(), "{corrupt:?}");
        }
    }
}
