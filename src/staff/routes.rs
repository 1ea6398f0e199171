//! The staff operations. Each handler reads as four steps: authenticate (the `auth`
//! argument), open the tenant transaction, call the repository, map the answer.

use poem_openapi::param::{Path, Query};
use poem_openapi::{ApiResponse, OpenApi, Tags};
use uuid::Uuid;

use super::model::{Staff, StaffCreate, StaffRole, StaffStats, StaffUpdate, search_text};
use super::repo::{self, ListFilter, OneStaff, StaffRows};
use crate::auth::BearerAuth;
use crate::db::Database;
use crate::error::{ApiError, Failure, Statuses};
use crate::payload::Json;

#[derive(Tags)]
enum ApiTags {
    /// The shop's team: who works there, in which role.
    Staff,
}

/// Failures of the read operations without an id.
pub struct ReadFailures;
impl Statuses for ReadFailures {
    const LIST: &'static [u16] = &[401, 403, 422, 500, 503];
}

/// Failures of the operations on one member.
pub struct OneFailures;
impl Statuses for OneFailures {
    const LIST: &'static [u16] = &[401, 403, 404, 422, 500, 503];
}

/// Failures of the operations that take a body.
pub struct WriteFailures;
impl Statuses for WriteFailures {
    const LIST: &'static [u16] = &[400, 401, 403, 404, 409, 413, 415, 422, 500, 503];
}

/// Failures of creation (no id involved, so no 404).
pub struct CreateFailures;
impl Statuses for CreateFailures {
    const LIST: &'static [u16] = &[400, 401, 403, 409, 413, 415, 422, 500, 503];
}

#[derive(ApiResponse)]
enum CreatedStaff {
    /// The new member.
    #[oai(status = 201)]
    Created(
        Json<OneStaff>,
        /// Where the new member can be read.
        #[oai(header = "Location")]
        String,
    ),
}

#[derive(ApiResponse)]
enum Deleted {
    /// The member was removed.
    #[oai(status = 204)]
    NoContent,
}

fn default_limit() -> u32 {
    50
}

/// The staff endpoints, over the database.
pub struct StaffApi {
    db: Database,
}

impl StaffApi {
    /// The staff endpoints, using `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Staff")]
impl StaffApi {
    /// List the shop's staff
    ///
    /// Ordered by full name, then id. Filters combine with AND.
    #[oai(path = "/staff", method = "get", operation_id = "listStaff")]
    async fn list_staff(
        &self,
        auth: BearerAuth,
        /// Text to find in the name or the email, ignoring case; `%` and `_` match themselves.
        #[oai(validator(max_length = 100))]
        q: Query<Option<String>>,
        /// Only members with this role.
        role: Query<Option<StaffRole>>,
        /// Only active (`true`) or inactive (`false`) members.
        is_active: Query<Option<bool>>,
        /// Page size.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
        /// Members to skip.
        #[oai(default, validator(maximum(value = "1000000")))]
        offset: Query<u32>,
    ) -> Result<Json<StaffRows<Vec<Staff>>>, Failure<ReadFailures>> {
        let tenant = auth.0;
        if let Some(q) = &q.0 {
            search_text(q).map_err(|message| ApiError::invalid("q", message))?;
        }
        let filter = ListFilter {
            q: q.0.filter(|q| !q.is_empty()),
            role: role.0,
            is_active: is_active.0,
            limit: limit.0.into(),
            offset: offset.0.into(),
        };

        let tx = self.db.begin_single(&tenant).await?;

        let staff = repo::list_staff(&tx, &tenant.org_id, &filter).await?;
        tx.commit().await?;

        Ok(Json(staff))
    }

    /// Count the shop's staff
    ///
    /// Totals over every member, active or not, computed in one query.
    #[oai(path = "/staff/stats", method = "get", operation_id = "getStaffStats")]
    async fn get_staff_stats(
        &self,
        auth: BearerAuth,
    ) -> Result<Json<StaffStats>, Failure<ReadFailures>> {
        let tenant = auth.0;

        let tx = self.db.begin_single(&tenant).await?;

        let stats = repo::staff_stats(&tx, &tenant.org_id).await?;
        tx.commit().await?;

        Ok(Json(stats))
    }

    /// Add a member to the shop
    ///
    /// The member joins the caller's organization, whatever the body says. Only the
    /// organization's admins (`org:admin`, or the roles in `CLERK_ADMIN_ROLES`) may do this.
    #[oai(path = "/staff", method = "post", operation_id = "createStaff")]
    async fn create_staff(
        &self,
        auth: BearerAuth,
        body: Json<StaffCreate>,
    ) -> Result<CreatedStaff, Failure<CreateFailures>> {
        let tenant = auth.0;
        tenant.require_admin()?;
        let new = body.0.validate()?;

        let tx = self.db.begin_single(&tenant).await?;

        let staff = repo::create_staff(&tx, &tenant.org_id, &new).await?;
        tx.commit().await?;

        let location = format!("/api/v1/staff/{}", staff.id());
        Ok(CreatedStaff::Created(Json(staff), location))
    }

    /// Read one member
    #[oai(path = "/staff/:id", method = "get", operation_id = "getStaff")]
    async fn get_staff(
        &self,
        auth: BearerAuth,
        /// The member's id.
        id: Path<Uuid>,
    ) -> Result<Json<OneStaff>, Failure<OneFailures>> {
        let tenant = auth.0;

        let tx = self.db.begin_single(&tenant).await?;

        let staff = repo::get_staff(&tx, &tenant.org_id, id.0).await?;
        tx.commit().await?;

        Ok(Json(staff.ok_or(ApiError::NotFound)?))
    }

    /// Change a member
    ///
    /// Only the fields sent change; `null` clears `department`, `avatar_url` or `clerk_id`.
    /// Admins only.
    #[oai(path = "/staff/:id", method = "patch", operation_id = "updateStaff")]
    async fn update_staff(
        &self,
        auth: BearerAuth,
        /// The member's id.
        id: Path<Uuid>,
        body: Json<StaffUpdate>,
    ) -> Result<Json<OneStaff>, Failure<WriteFailures>> {
        let tenant = auth.0;
        tenant.require_admin()?;
        let changes = body.0.validate()?;

        let tx = self.db.begin_single(&tenant).await?;

        let staff = if changes.is_empty() {
            repo::get_staff(&tx, &tenant.org_id, id.0).await?
        } else {
            repo::update_staff(&tx, &tenant.org_id, id.0, &changes).await?
        };
        tx.commit().await?;

        Ok(Json(staff.ok_or(ApiError::NotFound)?))
    }

    /// Remove a member
    ///
    /// Admins only.
    #[oai(path = "/staff/:id", method = "delete", operation_id = "deleteStaff")]
    async fn delete_staff(
        &self,
        auth: BearerAuth,
        /// The member's id.
        id: Path<Uuid>,
    ) -> Result<Deleted, Failure<OneFailures>> {
        let tenant = auth.0;
        tenant.require_admin()?;

        let tx = self.db.begin_single(&tenant).await?;

        let deleted = repo::delete_staff(&tx, &tenant.org_id, id.0).await?;
        tx.commit().await?;

        if deleted {
            Ok(Deleted::NoContent)
        } else {
            Err(ApiError::NotFound.into())
        }
    }
}
