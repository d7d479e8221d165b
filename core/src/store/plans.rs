//! Plans are the same for every caller: they are the price list, not tenant data.

use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};

use crate::entities::plans;
use crate::error::Result;

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<plans::Model>> {
    Ok(plans::Entity::find().order_by_asc(plans::Column::CpuMillis).all(db).await?)
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<plans::Model>> {
    Ok(plans::Entity::find_by_id(id.to_owned()).one(db).await?)
}
