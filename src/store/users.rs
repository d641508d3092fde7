use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{User, UserClaims};
use super::{DbResult, Store, flag, json_err};

pub(super) fn user_from_row(row: &AnyRow) -> DbResult<User> {
    let claims: String = row.try_get("claims")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        claims: serde_json::from_str::<UserClaims>(&claims).map_err(json_err)?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The columns `user_from_row` reads, from a `users` table aliased `u`: the one list for
/// every query that returns users, including the joins in `sessions` and `grants`.
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.password_hash, u.disabled, u.claims, u.updated_at"
    };
}
pub(super) use user_columns;

/// A new user for `insert_user`.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub claims: &'a UserClaims,
    pub source: &'a str,
}

impl Store {
    /// Returns the new user's id (`sub`), or `None` when the username is taken.
    pub async fn insert_user(&self, u: NewUser<'_>, now: i64) -> DbResult<Option<String>> {
        let id = uuid::Uuid::new_v4().to_string();
        let claims = serde_json::to_string(u.claims).map_err(json_err)?;
        let r = sqlx::query(
            "INSERT INTO users (id, username, username_lower, email_lower, password_hash, disabled, claims, source, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $8)
             ON CONFLICT (username_lower) DO NOTHING",
        )
        .bind(&id)
        .bind(u.username)
        .bind(u.username.to_lowercase())
        .bind(u.claims.email.as_ref().map(|e| e.to_lowercase()))
        .bind(u.password_hash)
        .bind(claims)
        .bind(u.source)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok((r.rows_affected() == 1).then_some(id))
    }

    /// Config users: created once, then their hash and claims follow the config.
    pub async fn upsert_config_user(
        &self,
        u: NewUser<'_>,
        disabled: bool,
        now: i64,
    ) -> DbResult<()> {
        if self.insert_user(NewUser { ..u }, now).await?.is_none() {
            let claims = serde_json::to_string(u.claims).map_err(json_err)?;
            sqlx::query(
                "UPDATE users SET password_hash = $2, claims = $3, email_lower = $4, disabled = $5, updated_at = $6
                 WHERE username_lower = $1 AND (password_hash <> $2 OR claims <> $3 OR disabled <> $5)",
            )
            .bind(u.username.to_lowercase())
            .bind(u.password_hash)
            .bind(claims)
            .bind(u.claims.email.as_ref().map(|e| e.to_lowercase()))
            .bind(flag(disabled))
            .bind(now)
            .execute(self.pool())
            .await?;
        } else if disabled {
            self.set_user_disabled(u.username, true, now).await?;
        }
        Ok(())
    }

    /// Find by username or, failing that, by email (both case-insensitive).
    pub async fn find_user_by_login(&self, login: &str) -> DbResult<Option<User>> {
        let l = login.trim().to_lowercase();
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE username_lower = $1 UNION ALL SELECT ",
            user_columns!(),
            " FROM users u WHERE email_lower = $1 AND username_lower <> $1 LIMIT 1"
        ))
        .bind(l)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn get_user(&self, id: &str) -> DbResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn list_users(&self) -> DbResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u ORDER BY username_lower"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn set_user_password(&self, username: &str, hash: &str, now: i64) -> DbResult<bool> {
        let r = sqlx::query(
            "UPDATE users SET password_hash = $2, updated_at = $3 WHERE username_lower = $1",
        )
        .bind(username.to_lowercase())
        .bind(hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> DbResult<bool> {
        let r = sqlx::query(
            "UPDATE users SET disabled = $2, updated_at = $3 WHERE username_lower = $1",
        )
        .bind(username.to_lowercase())
        .bind(flag(disabled))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
