use sea_orm::entity::prelude::*;

use crate::types::Role;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    /// argon2id PHC string; `None` until the user sets a password through a one-time link.
    pub password_hash: Option<String>,
    pub role: Role,
    /// Set for customer users, `None` for admins.
    pub customer_id: Option<Uuid>,
    /// TOTP secret sealed with the data key (context `totp:<user id>`).
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    /// The last TOTP time step used (Unix time / 30): a code is accepted once in its window.
    pub totp_last_step: Option<i64>,
    pub disabled: bool,
    /// Bumped to end every session of the user at once (disable, password change).
    pub session_epoch: i32,
    pub last_login_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
