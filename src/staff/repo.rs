//! The staff SQL: one function per query, each run inside the caller's tenant transaction.
//!
//! Every query names the organization explicitly as well; row-level security would keep
//! shops apart without it, and the explicit filter keeps them apart without the policy.

use std::borrow::Cow;
use std::marker::PhantomData;

use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type as ApiType;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};
use uuid::Uuid;

use super::model::{NewStaff, Staff, StaffChanges, StaffRole, StaffStats, StaffView, Timestamp};
use crate::db::{Param, Tx, db_error};
use crate::error::{ApiError, FieldError};
use crate::json::WriteJson;

/// The columns of a member, in the order `view` reads them.
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
/// The statement names only the filters given (one of eight, each prepared once per
/// connection): a catch-all `($2 IS NULL OR ...)` form gets a generic plan PostgreSQL
/// prices so badly on a big table that it plans every execution anew, which cost a 50-member
/// shop's list a quarter more on 1,000,000 rows than on 10,000 (bench/NOTES.md). Only
/// fixed text goes into the statement; every value is a bound parameter.
///
/// The search is `ILIKE`, which PostgreSQL does not mark leakproof, so under row-level
/// security it cannot use a trigram index: it filters the shop's rows one by one. Cheap for a
/// team of 50, ~50 ms for a shop of 5,000 (bench/NOTES.md); a shop-scoped prefix search on a
/// normalized column would be the way out if shops grow that big.
pub async fn list_staff(
    tx: &Tx,
    org_id: &str,
    filter: &ListFilter,
) -> Result<StaffRows<Vec<Staff>>, ApiError> {
    let pattern = filter.q.as_deref().map(like_pattern);
    let role = filter.role.map(StaffRole::as_str);
    let mut sql = format!("SELECT {COLUMNS} FROM staff_members WHERE organization_id = $1");
    let mut params: Vec<Param<'_>> = vec![(&org_id, Type::TEXT)];
    if let Some(pattern) = &pattern {
        params.push((pattern, Type::TEXT));
        let n = params.len();
        sql.push_str(&format!(" AND (full_name ILIKE ${n} OR email ILIKE ${n})"));
    }
    if let Some(role) = &role {
        params.push((role, Type::TEXT));
        sql.push_str(&format!(" AND role = ${}", params.len()));
    }
    if let Some(is_active) = &filter.is_active {
        params.push((is_active, Type::BOOL));
        sql.push_str(&format!(" AND is_active = ${}", params.len()));
    }
    params.push((&filter.limit, Type::INT8));
    params.push((&filter.offset, Type::INT8));
    let n = params.len();
    sql.push_str(&format!(
        " ORDER BY full_name, id LIMIT ${} OFFSET ${n}",
        n - 1
    ));
    let rows = tx.query(&sql, &params).await.map_err(db_error)?;
    Ok(StaffRows::new(rows))
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
pub async fn get_staff(tx: &Tx, org_id: &str, id: Uuid) -> Result<Option<OneStaff>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM staff_members WHERE organization_id = $1 AND id = $2");
    let params = [(&org_id as _, Type::TEXT), (&id as _, Type::UUID)];
    let row = tx.query_opt(&sql, &params).await.map_err(db_error)?;
    row.map(OneStaff::from_row).transpose()
}

/// Adds a member to the shop.
pub async fn create_staff(tx: &Tx, org_id: &str, new: &NewStaff) -> Result<OneStaff, ApiError> {
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
    OneStaff::from_row(row.ok_or_else(|| unexpected("INSERT ... RETURNING returned no row"))?)
}

/// Applies `changes` to a member of the shop; `None` when the id is not the shop's.
pub async fn update_staff(
    tx: &Tx,
    org_id: &str,
    id: Uuid,
    changes: &StaffChanges,
) -> Result<Option<OneStaff>, ApiError> {
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
    row.map(OneStaff::from_row).transpose()
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

/// Members as PostgreSQL returned them, written to JSON straight from the rows (no field is
/// copied into a struct first) and documented as `S`: a list of [`Staff`], or one.
pub struct StaffRows<S> {
    rows: Vec<Row>,
    schema: PhantomData<S>,
}

/// One member, as [`StaffRows`] writes it.
pub type OneStaff = StaffRows<Staff>;

impl<S> StaffRows<S> {
    fn new(rows: Vec<Row>) -> Self {
        Self {
            rows,
            schema: PhantomData,
        }
    }
}

impl OneStaff {
    /// The member in `row`, checked once here so that writing it cannot fail.
    fn from_row(row: Row) -> Result<Self, ApiError> {
        view(&row)?;
        Ok(Self::new(vec![row]))
    }

    /// The member's id.
    pub fn id(&self) -> Uuid {
        self.rows[0].get(0)
    }
}

impl WriteJson for OneStaff {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        view(&self.rows[0])?.write_json(out);
        Ok(())
    }
}

impl WriteJson for StaffRows<Vec<Staff>> {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        out.push(b'[');
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            view(row)?.write_json(out);
        }
        out.push(b']');
        Ok(())
    }

    fn json_size_hint(&self) -> usize {
        // A member's JSON is its text plus under 300 bytes of keys, ids and timestamps.
        2 + self.rows.len() * 400
    }
}

/// Documented exactly as `S`, so the OpenAPI document is the same whichever way the
/// response is written.
impl<S: ApiType> ApiType for StaffRows<S> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        S::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        S::schema_ref()
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(self))
    }
}

/// The member in `row`, its text borrowed from the row.
fn view(row: &Row) -> Result<StaffView<'_>, ApiError> {
    // By position in COLUMNS: a lookup by name compares names for every field of every row.
    let column = |err: tokio_postgres::Error| {
        tracing::error!(error = %err, "a stored member could not be read");
        ApiError::Internal
    };
    let role: &str = row.try_get(5).map_err(column)?;
    let role =
        StaffRole::from_db(role).ok_or_else(|| unexpected("a stored role is outside the enum"))?;
    let at = |i: usize| -> Result<Timestamp, ApiError> {
        let PgTimestamp(t) = row.try_get(i).map_err(column)?;
        Ok(t)
    };
    Ok(StaffView {
        id: row.try_get(0).map_err(column)?,
        organization_id: row.try_get(1).map_err(column)?,
        clerk_id: row.try_get(2).map_err(column)?,
        full_name: row.try_get(3).map_err(column)?,
        email: row.try_get(4).map_err(column)?,
        role,
        department: row.try_get(6).map_err(column)?,
        is_active: row.try_get(7).map_err(column)?,
        avatar_url: row.try_get(8).map_err(column)?,
        created_at: at(9)?,
        updated_at: at(10)?,
    })
}

/// A `timestamptz` read from its binary form (microseconds since 2000) without going
/// through chrono; refused outside the years 0 to 9999 (`infinity` included).
struct PgTimestamp(Timestamp);

impl<'a> FromSql<'a> for PgTimestamp {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let micros = i64::from_be_bytes(raw.try_into()?);
        Timestamp::from_pg_micros(micros)
            .map(PgTimestamp)
            .ok_or_else(|| {
                format!("timestamp {micros} µs from 2000 is outside the years 0 to 9999").into()
            })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

#[cfg(test)]
mod tests {
    use super::{COLUMNS, like_pattern};

    #[test]
    fn view_reads_the_columns_in_this_order() {
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
