//! The staff SQL: one function per query, each run inside the caller's tenant transaction.
//!
//! Every query names the organization explicitly as well; row-level security would keep
//! shops apart without it, and the explicit filter keeps them apart without the policy.

use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::model::{NewStaff, Staff, StaffChanges, StaffRole, StaffStats};
use crate::db::{Tx, db_error};
use crate::error::{ApiError, FieldError};
use crate::payload::Nullable;

/// The columns of a member, in the order `staff_from_row` reads them.
const COLUMNS: &str = "id, organization_id, clerk_id, full_name, email, role, department, \
                       is_active, avatar_url, created_at, updated_at";

/// Filters of the staff list.
#[derive(Debug, Default)]
pub struct ListFilter {
    /// Case-insensitive literal substring of the name or the email.
    pub q: Option<String>,
    pub role: Option<StaffRole>,
    pub is_active: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

/// One page of the shop's staff, by name, then id.
///
/// The search is `ILIKE`, which PostgreSQL does not mark leakproof, so under row-level
/// security it cannot use a trigram index: it filters the shop's rows one by one. Cheap for a
/// team of 50, ~50 ms for a shop of 5,000 (bench/NOTES.md); a shop-scoped prefix search on a
/// normalized column would be the way out if shops grow that big.
pub async fn list_staff(
    tx: &Tx,
    org_id: &str,
    filter: &ListFilter,
) -> Result<Vec<Staff>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM staff_members
          WHERE organization_id = $1
            AND ($2::text IS NULL OR full_name ILIKE $2 OR email ILIKE $2)
            AND ($3::text IS NULL OR role = $3)
            AND ($4::bool IS NULL OR is_active = $4)
          ORDER BY full_name, id
          LIMIT $5 OFFSET $6"
    );
    let pattern = filter.q.as_deref().map(like_pattern);
    let role = filter.role.map(StaffRole::as_str);
    let params = [
        (&org_id as _, Type::TEXT),
        (&pattern as _, Type::TEXT),
        (&role as _, Type::TEXT),
        (&filter.is_active as _, Type::BOOL),
        (&filter.limit as _, Type::INT8),
        (&filter.offset as _, Type::INT8),
    ];
    let rows = tx.query(&sql, &params).await.map_err(db_error)?;
    rows.iter().map(staff_from_row).collect()
}

/// Counts of the shop's staff, in one pass over its rows.
pub async fn staff_stats(tx: &Tx, org_id: &str) -> Result<StaffStats, ApiError> {
    let sql = "SELECT count(*),
                      count(*) FILTER (WHERE is_active),
                      count(*) FILTER (WHERE role = 'ADMIN'),
                      count(*) FILTER (WHERE role = 'MANAGER')
                 FROM staff_members
                WHERE organization_id = $1";
    let row = tx
        .query_opt(sql, &[(&org_id, Type::TEXT)])
        .await
        .map_err(db_error)?;
    let row = row.ok_or_else(|| unexpected("an aggregate returned no row"))?;
    Ok(StaffStats {
        total_users: row.get(0),
        active_users: row.get(1),
        admins: row.get(2),
        managers: row.get(3),
    })
}

/// One member of the shop, if the id is the shop's.
pub async fn get_staff(tx: &Tx, org_id: &str, id: Uuid) -> Result<Option<Staff>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM staff_members WHERE organization_id = $1 AND id = $2");
    let params = [(&org_id as _, Type::TEXT), (&id as _, Type::UUID)];
    let row = tx.query_opt(&sql, &params).await.map_err(db_error)?;
    row.as_ref().map(staff_from_row).transpose()
}

/// Adds a member to the shop.
pub async fn create_staff(tx: &Tx, org_id: &str, new: &NewStaff) -> Result<Staff, ApiError> {
    let sql = format!(
        "INSERT INTO staff_members
                (organization_id, full_name, email, role, department, is_active, avatar_url, clerk_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {COLUMNS}"
    );
    let role = new.role.as_str();
    let params = [
        (&org_id as _, Type::TEXT),
        (&new.full_name as _, Type::TEXT),
        (&new.email as _, Type::TEXT),
        (&role as _, Type::TEXT),
        (&new.department as _, Type::TEXT),
        (&new.is_active as _, Type::BOOL),
        (&new.avatar_url as _, Type::TEXT),
        (&new.clerk_id as _, Type::TEXT),
    ];
    let row = tx.query_opt(&sql, &params).await.map_err(write_error)?;
    staff_from_row(&row.ok_or_else(|| unexpected("INSERT ... RETURNING returned no row"))?)
}

/// Applies `changes` to a member of the shop; `None` when the id is not the shop's.
pub async fn update_staff(
    tx: &Tx,
    org_id: &str,
    id: Uuid,
    changes: &StaffChanges,
) -> Result<Option<Staff>, ApiError> {
    // A flag per clearable column tells "leave it" from "set it to this, maybe null".
    let sql = format!(
        "UPDATE staff_members SET
                full_name  = coalesce($3, full_name),
                email      = coalesce($4, email),
                role       = coalesce($5, role),
                is_active  = coalesce($6, is_active),
                department = CASE WHEN $7 THEN $8 ELSE department END,
                avatar_url = CASE WHEN $9 THEN $10 ELSE avatar_url END,
                clerk_id   = CASE WHEN $11 THEN $12 ELSE clerk_id END,
                updated_at = now()
          WHERE organization_id = $1 AND id = $2
          RETURNING {COLUMNS}"
    );
    let (set_department, department) = split(&changes.department);
    let (set_avatar, avatar_url) = split(&changes.avatar_url);
    let (set_clerk, clerk_id) = split(&changes.clerk_id);
    let role = changes.role.map(StaffRole::as_str);
    let params = [
        (&org_id as _, Type::TEXT),
        (&id as _, Type::UUID),
        (&changes.full_name as _, Type::TEXT),
        (&changes.email as _, Type::TEXT),
        (&role as _, Type::TEXT),
        (&changes.is_active as _, Type::BOOL),
        (&set_department as _, Type::BOOL),
        (&department as _, Type::TEXT),
        (&set_avatar as _, Type::BOOL),
        (&avatar_url as _, Type::TEXT),
        (&set_clerk as _, Type::BOOL),
        (&clerk_id as _, Type::TEXT),
    ];
    let row = tx.query_opt(&sql, &params).await.map_err(write_error)?;
    row.as_ref().map(staff_from_row).transpose()
}

/// Removes a member of the shop; false when the id is not the shop's.
pub async fn delete_staff(tx: &Tx, org_id: &str, id: Uuid) -> Result<bool, ApiError> {
    let sql = "DELETE FROM staff_members WHERE organization_id = $1 AND id = $2 RETURNING id";
    let params = [(&org_id as _, Type::TEXT), (&id as _, Type::UUID)];
    let deleted = tx.query_opt(sql, &params).await.map_err(db_error)?;
    Ok(deleted.is_some())
}

fn split(change: &Option<Option<String>>) -> (bool, Option<&str>) {
    (change.is_some(), change.as_ref().and_then(|v| v.as_deref()))
}

fn unexpected(what: &'static str) -> ApiError {
    tracing::error!(what, "unexpected database answer");
    ApiError::Internal
}

/// `%text%` for ILIKE, with the wildcard and escape characters of `text` matching themselves.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Maps the constraint a write broke to the field that broke it.
fn write_error(err: tokio_postgres::Error) -> ApiError {
    let Some(db) = err.as_db_error() else {
        return db_error(err);
    };
    let field = match db.constraint() {
        Some("staff_members_org_email_key") => "email",
        Some("staff_members_org_clerk_id_key") => "clerk_id",
        Some("staff_members_full_name_check") => "full_name",
        Some("staff_members_email_check") => "email",
        Some("staff_members_role_check") => "role",
        _ => return db_error(err),
    };
    if db.code() == &SqlState::UNIQUE_VIOLATION {
        let message = match field {
            "email" => "is already used by another member of your organization",
            _ => "is already linked to another member of your organization",
        };
        ApiError::Conflict(vec![FieldError::new(field, message)])
    } else {
        ApiError::invalid(field, db.message().to_owned())
    }
}

fn staff_from_row(row: &Row) -> Result<Staff, ApiError> {
    // By position in COLUMNS: a lookup by name compares names for every field of every row.
    let role: &str = row.get(5);
    let role =
        StaffRole::from_db(role).ok_or_else(|| unexpected("a stored role is outside the enum"))?;
    Ok(Staff {
        id: row.get(0),
        organization_id: row.get(1),
        clerk_id: Nullable(row.get(2)),
        full_name: row.get(3),
        email: row.get(4),
        role,
        department: Nullable(row.get(6)),
        is_active: row.get(7),
        avatar_url: Nullable(row.get(8)),
        created_at: row.get(9),
        updated_at: row.get(10),
    })
}

#[cfg(test)]
mod tests {
    use super::{COLUMNS, like_pattern};

    #[test]
    fn staff_from_row_reads_the_columns_in_this_order() {
        let names: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(
            names,
            [
                "id",
                "organization_id",
                "clerk_id",
                "full_name",
                "email",
                "role",
                "department",
                "is_active",
                "avatar_url",
                "created_at",
                "updated_at"
            ]
        );
    }

    #[test]
    fn search_text_matches_itself_literally() {
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
