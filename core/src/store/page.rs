//! Cursor pagination. Ids are UUIDv7 (time-ordered), so "newest first, after this id" is a
//! stable cursor that needs no offset and does not shift when rows are inserted.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

use crate::error::Result;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    /// The id of the last item of the previous page.
    pub cursor: Option<Uuid>,
    pub limit: Option<u64>,
}

#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Uuid>,
}

impl<T> Paged<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// Runs `select` newest first, one page at a time, by its UUIDv7 id column.
pub async fn fetch<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    id_column: C,
    page: Page,
    id_of: impl Fn(&E::Model) -> Uuid,
) -> Result<Paged<E::Model>>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut select = select.order_by_desc(id_column).limit(limit + 1);
    if let Some(cursor) = page.cursor {
        select = select.filter(id_column.lt(cursor));
    }
    let mut items = select.all(db).await?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(&id_of)
    } else {
        None
    };
    Ok(Paged { items, next_cursor })
}
