//! The staff member resource: what the API sends and accepts, and the rules for its values.

use chrono::{DateTime, Utc};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::json::{self, WriteJson};
use crate::payload::Nullable;

/// Longest accepted full name, in characters.
pub const FULL_NAME_MAX: usize = 200;
/// Longest accepted email address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest accepted department name, in characters.
pub const DEPARTMENT_MAX: usize = 100;
/// Longest accepted avatar URL.
pub const AVATAR_URL_MAX: usize = 2048;
/// Longest accepted Clerk user id.
pub const CLERK_ID_MAX: usize = 64;

/// What a member does in the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "UPPERCASE")]
#[serde(rename_all = "UPPERCASE")]
pub enum StaffRole {
    /// Runs the shop, including its team.
    Admin,
    /// Manages day-to-day work.
    Manager,
    /// Serves customers.
    Staff,
    /// Helps the staff.
    Assistant,
}

impl StaffRole {
    /// The value stored in the database and sent in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Manager => "MANAGER",
            Self::Staff => "STAFF",
            Self::Assistant => "ASSISTANT",
        }
    }

    /// Reads a stored value; the table's CHECK constraint allows only these.
    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "ADMIN" => Some(Self::Admin),
            "MANAGER" => Some(Self::Manager),
            "STAFF" => Some(Self::Staff),
            "ASSISTANT" => Some(Self::Assistant),
            _ => None,
        }
    }
}

/// A member of the shop's team.
#[derive(Debug, Clone, Object)]
pub struct Staff {
    /// The member's id.
    pub id: Uuid,
    /// The shop (Clerk organization) the member belongs to; always the caller's.
    pub organization_id: String,
    /// The Clerk user linked to this member, if any (`user_...`).
    pub clerk_id: Nullable<String>,
    /// Full name, as entered, without surrounding spaces.
    pub full_name: String,
    /// Email address, unique within the shop ignoring case.
    pub email: String,
    /// What the member does.
    pub role: StaffRole,
    /// The member's department, if any.
    pub department: Nullable<String>,
    /// Whether the member currently works in the shop.
    pub is_active: bool,
    /// Address of the member's picture, if any.
    pub avatar_url: Nullable<String>,
    /// When the member was added.
    pub created_at: DateTime<Utc>,
    /// When the member was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A member as it goes out in JSON, borrowing its text from where it is stored (a database
/// row): written with [`Staff`]'s fields, in its order, without copying any of them first.
#[derive(Debug, Clone)]
pub struct StaffView<'a> {
    pub id: Uuid,
    pub organization_id: &'a str,
    pub clerk_id: Option<&'a str>,
    pub full_name: &'a str,
    pub email: &'a str,
    pub role: StaffRole,
    pub department: Option<&'a str>,
    pub is_active: bool,
    pub avatar_url: Option<&'a str>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl StaffView<'_> {
    /// Appends the member's JSON object to `out`, growing it at most once.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(self.json_size_hint());
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = self.id.hyphenated().encode_lower(&mut id);
        let (created, created_len) = self.created_at.rfc3339();
        let (updated, updated_len) = self.updated_at.rfc3339();
        json::Object::new(out)
            .plain_str("id", id.as_bytes())
            .str("organization_id", self.organization_id)
            .opt_str("clerk_id", self.clerk_id)
            .str("full_name", self.full_name)
            .str("email", self.email)
            .plain_str("role", self.role.as_str().as_bytes())
            .opt_str("department", self.department)
            .bool("is_active", self.is_active)
            .opt_str("avatar_url", self.avatar_url)
            .plain_str("created_at", &created[..created_len])
            .plain_str("updated_at", &updated[..updated_len])
            .end();
    }

    /// At least the length of the JSON object, so a buffer is sized once.
    pub fn json_size_hint(&self) -> usize {
        // Keys, punctuation, id, role, flag, nulls and timestamps come to under 300 bytes.
        300 + self.organization_id.len()
            + self.full_name.len()
            + self.email.len()
            + [self.clerk_id, self.department, self.avatar_url]
                .iter()
                .map(|v| v.map_or(0, str::len))
                .sum::<usize>()
    }
}

/// A point in time as PostgreSQL stores a `timestamptz`: microseconds since
/// 2000-01-01T00:00:00Z, within the years 0 to 9999 (what RFC 3339 can write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(i64);

/// Days from 0000-03-01 (the start of the proleptic Gregorian calendar's 400-year cycle as
/// the civil-date arithmetic below counts it) to 2000-01-01.
const DAYS_TO_2000: i64 = 730_425;
/// Days in 400 Gregorian years.
const DAYS_PER_CYCLE: i64 = 146_097;
/// 2000-01-01T00:00:00Z in microseconds since the Unix epoch.
const MICROS_2000_FROM_UNIX: i64 = 946_684_800_000_000;
/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z, in microseconds since 2000-01-01.
const MICROS_YEAR_0: i64 = -63_113_904_000_000_000;
const MICROS_YEAR_10000: i64 = 252_455_616_000_000_000;

impl Timestamp {
    /// `micros` since 2000-01-01T00:00:00Z; `None` outside the years 0 to 9999.
    pub fn from_pg_micros(micros: i64) -> Option<Self> {
        (MICROS_YEAR_0..MICROS_YEAR_10000)
            .contains(&micros)
            .then_some(Self(micros))
    }

    /// The same instant for chrono.
    pub fn to_chrono(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0 + MICROS_2000_FROM_UNIX)
            .expect("years 0 to 9999 are within chrono's range")
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z`, exactly as chrono's `Serialize` writes the same
    /// instant (as many fraction digits as needed: none, 3 or 6), digits written by hand;
    /// through chrono, timestamps were a seventh of a list request's instructions
    /// (bench/NOTES.md).
    pub fn rfc3339(self) -> ([u8; 27], usize) {
        let days = self.0.div_euclid(86_400_000_000);
        let in_day = self.0.rem_euclid(86_400_000_000);
        // One 400-year cycle later, so January and February of year 0 count from a
        // non-negative day too; the cycle is taken off the year again.
        let (year, month, day) = civil_from_days(days + DAYS_TO_2000 + DAYS_PER_CYCLE);
        let year = year - 400;
        let secs = in_day / 1_000_000;
        let micros = in_day % 1_000_000;

        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                buf[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, secs / 3600);
        put(14, 2, secs / 60 % 60);
        put(17, 2, secs % 60);
        let digits = match micros {
            0 => 0,
            m if m % 1_000 == 0 => 3,
            _ => 6,
        };
        put(20, 6, micros);
        if digits == 0 {
            buf[19] = b'Z';
            return (buf, 20);
        }
        buf[20 + digits] = b'Z';
        (buf, 21 + digits)
    }
}

/// Year, month and day of the `days`-th day after 0000-03-01 (Howard Hinnant's
/// `civil_from_days`, shifted so that every value here is non-negative).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let era = days / DAYS_PER_CYCLE;
    let day_of_era = days % DAYS_PER_CYCLE;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A new member. Any other field (`id`, `organization_id`, ...) is ignored: the shop is
/// always the caller's.
#[derive(Debug, Clone, Object, Deserialize)]
pub struct StaffCreate {
    /// Full name: 2 to 200 characters once surrounding spaces are removed.
    #[oai(validator(min_length = 2, max_length = 200))]
    pub full_name: String,
    /// Email address; must be unused in the shop, ignoring case.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// What the member does.
    pub role: StaffRole,
    /// Department (at most 100 characters).
    #[serde(default)]
    #[oai(validator(max_length = 100))]
    pub department: Nullable<String>,
    /// Whether the member currently works in the shop; `true` when left out.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// An http(s) address of the member's picture.
    #[serde(default)]
    #[oai(validator(max_length = 2048))]
    pub avatar_url: Nullable<String>,
    /// The Clerk user to link (`user_...`); must be unlinked in the shop.
    #[serde(default)]
    #[oai(validator(max_length = 64))]
    pub clerk_id: Nullable<String>,
}

/// Changes to a member: only the fields sent change. `null` clears `department`,
/// `avatar_url` and `clerk_id`; the other fields cannot be null.
#[derive(Debug, Clone, Default, Object, Deserialize)]
pub struct StaffUpdate {
    /// Full name: 2 to 200 characters once surrounding spaces are removed.
    #[serde(default)]
    #[oai(validator(min_length = 2, max_length = 200))]
    pub full_name: MaybeUndefined<String>,
    /// Email address; must be unused in the shop, ignoring case.
    #[serde(default)]
    #[oai(validator(max_length = 254))]
    pub email: MaybeUndefined<String>,
    /// What the member does.
    #[serde(default)]
    pub role: MaybeUndefined<StaffRole>,
    /// Department (at most 100 characters); `null` clears it.
    #[serde(default)]
    #[oai(validator(max_length = 100))]
    pub department: MaybeUndefined<Nullable<String>>,
    /// Whether the member currently works in the shop.
    #[serde(default)]
    pub is_active: MaybeUndefined<bool>,
    /// An http(s) address of the member's picture; `null` clears it.
    #[serde(default)]
    #[oai(validator(max_length = 2048))]
    pub avatar_url: MaybeUndefined<Nullable<String>>,
    /// The Clerk user to link (`user_...`); `null` unlinks it.
    #[serde(default)]
    #[oai(validator(max_length = 64))]
    pub clerk_id: MaybeUndefined<Nullable<String>>,
}

/// Counts over the whole shop, active or not.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize, Deserialize)]
pub struct StaffStats {
    /// Every member.
    pub total_users: i64,
    /// Members with `is_active`.
    pub active_users: i64,
    /// Members whose role is ADMIN.
    pub admins: i64,
    /// Members whose role is MANAGER.
    pub managers: i64,
}

impl WriteJson for StaffStats {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        json::Object::new(out)
            .i64("total_users", self.total_users)
            .i64("active_users", self.active_users)
            .i64("admins", self.admins)
            .i64("managers", self.managers)
            .end();
        Ok(())
    }
}

/// A validated new member, ready to store.
#[derive(Debug)]
pub struct NewStaff {
    pub full_name: String,
    pub email: String,
    pub role: StaffRole,
    pub department: Option<String>,
    pub is_active: bool,
    pub avatar_url: Option<String>,
    pub clerk_id: Option<String>,
}

/// A validated change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct StaffChanges {
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub role: Option<StaffRole>,
    pub is_active: Option<bool>,
    pub department: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub clerk_id: Option<Option<String>>,
}

impl StaffChanges {
    /// True when the request asked to change nothing.
    pub fn is_empty(&self) -> bool {
        self.full_name.is_none()
            && self.email.is_none()
            && self.role.is_none()
            && self.is_active.is_none()
            && self.department.is_none()
            && self.avatar_url.is_none()
            && self.clerk_id.is_none()
    }
}

/// Collects every failing field of one request, so the client sees them all at once.
#[derive(Default)]
struct Checker(Vec<FieldError>);

impl Checker {
    fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|message| self.0.push(FieldError::new(field, message)))
            .ok()
    }

    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}

impl StaffCreate {
    /// Checks every value and normalizes the text ones.
    pub fn validate(self) -> Result<NewStaff, ApiError> {
        let mut c = Checker::default();
        let full_name = c.check("full_name", full_name(&self.full_name));
        let email = c.check("email", email(&self.email));
        let department = c.check("department", optional(self.department.0, department));
        let avatar_url = c.check("avatar_url", optional(self.avatar_url.0, avatar_url));
        let clerk_id = c.check("clerk_id", optional(self.clerk_id.0, clerk_id));
        c.finish(|| NewStaff {
            full_name: full_name.unwrap_or_default(),
            email: email.unwrap_or_default(),
            role: self.role,
            department: department.flatten(),
            is_active: self.is_active.unwrap_or(true),
            avatar_url: avatar_url.flatten(),
            clerk_id: clerk_id.flatten(),
        })
    }
}

impl StaffUpdate {
    /// Checks every value sent and normalizes the text ones.
    pub fn validate(self) -> Result<StaffChanges, ApiError> {
        let mut c = Checker::default();
        let full_name = c.check("full_name", required(self.full_name, |v| full_name(&v)));
        let email = c.check("email", required(self.email, |v| email(&v)));
        let role = c.check("role", required(self.role, Ok));
        let is_active = c.check("is_active", required(self.is_active, Ok));
        let department = c.check("department", clearable(self.department, department));
        let avatar_url = c.check("avatar_url", clearable(self.avatar_url, avatar_url));
        let clerk_id = c.check("clerk_id", clearable(self.clerk_id, clerk_id));
        c.finish(|| StaffChanges {
            full_name: full_name.flatten(),
            email: email.flatten(),
            role: role.flatten(),
            is_active: is_active.flatten(),
            department: department.flatten(),
            avatar_url: avatar_url.flatten(),
            clerk_id: clerk_id.flatten(),
        })
    }
}

/// A field that may be left out but not set to null.
fn required<T, U>(
    value: MaybeUndefined<T>,
    check: impl FnOnce(T) -> Result<U, String>,
) -> Result<Option<U>, String> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err("cannot be null".to_owned()),
        MaybeUndefined::Value(v) => check(v).map(Some),
    }
}

/// A field that may be left out (no change), null (clear) or a value.
fn clearable(
    value: MaybeUndefined<Nullable<String>>,
    check: fn(&str) -> Result<String, String>,
) -> Result<Option<Option<String>>, String> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null | MaybeUndefined::Value(Nullable(None)) => Ok(Some(None)),
        MaybeUndefined::Value(Nullable(Some(v))) => optional(Some(v), check).map(Some),
    }
}

/// An optional text field: blank counts as absent.
fn optional(
    value: Option<String>,
    check: fn(&str) -> Result<String, String>,
) -> Result<Option<String>, String> {
    match value {
        Some(v) if !v.trim().is_empty() => check(v.trim()).map(Some),
        _ => Ok(None),
    }
}

/// Characters that are invisible or reorder text: zero-width marks, joiners, byte-order
/// marks and bidirectional controls. A name made of them looks blank or spoofs another.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}')
}

/// Control characters, line and paragraph separators, and invisible characters.
fn has_forbidden(value: &str) -> bool {
    value
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}' || is_invisible(c))
}

/// Rejects text PostgreSQL cannot store or people cannot see.
fn printable(value: &str) -> Result<(), String> {
    if has_forbidden(value) {
        return Err(
            "must not contain control, invisible or direction-changing characters".to_owned(),
        );
    }
    Ok(())
}

fn full_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    printable(name)?;
    let chars = name.chars().count();
    if !(2..=FULL_NAME_MAX).contains(&chars) {
        return Err(format!(
            "must have 2 to {FULL_NAME_MAX} characters, not counting surrounding spaces"
        ));
    }
    Ok(name.to_owned())
}

/// A practical email check: one `@`, something before it, a dotted domain after it, no
/// spaces. Deliverability is for the mail server to judge.
fn email(value: &str) -> Result<String, String> {
    let email = value.trim();
    if email.chars().count() > EMAIL_MAX {
        return Err(format!("must have at most {EMAIL_MAX} characters"));
    }
    let invalid = || Err("must be an email address like ana@example.com".to_owned());
    if has_forbidden(email) {
        return invalid();
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid();
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && !local.chars().any(|c| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';' | '<' | '>' | '"' | '(' | ')' | '[' | ']' | '\\' | ':'
                )
        });
    if !(domain_ok && local_ok) {
        return invalid();
    }
    Ok(email.to_owned())
}

fn department(value: &str) -> Result<String, String> {
    printable(value)?;
    if value.chars().count() > DEPARTMENT_MAX {
        return Err(format!("must have at most {DEPARTMENT_MAX} characters"));
    }
    Ok(value.to_owned())
}

/// An absolute http(s) URL without credentials, stored in its normalized form (so what is
/// stored is exactly what a browser would request, with nothing hidden in it).
fn avatar_url(value: &str) -> Result<String, String> {
    if value.chars().count() > AVATAR_URL_MAX {
        return Err(format!("must have at most {AVATAR_URL_MAX} characters"));
    }
    let invalid = || Err("must be an http or https URL".to_owned());
    if has_forbidden(value) || value.contains(char::is_whitespace) {
        return invalid();
    }
    let Ok(url) = url::Url::parse(value) else {
        return invalid();
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return invalid();
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".to_owned());
    }
    let normalized = url.to_string();
    if normalized.chars().count() > AVATAR_URL_MAX {
        return Err(format!("must have at most {AVATAR_URL_MAX} characters"));
    }
    Ok(normalized)
}

fn clerk_id(value: &str) -> Result<String, String> {
    let ok = value.len() <= CLERK_ID_MAX
        && value.strip_prefix("user_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if ok {
        Ok(value.to_owned())
    } else {
        Err("must be a Clerk user id like user_2abc".to_owned())
    }
}

/// Checks the list's search text: the same characters as a name may hold.
pub fn search_text(value: &str) -> Result<(), String> {
    printable(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_json(t: &DateTime<Utc>) -> String {
        serde_json::to_string(t)
            .unwrap()
            .trim_matches('"')
            .to_owned()
    }

    fn ours(t: Timestamp) -> String {
        let (buf, len) = t.rfc3339();
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    #[test]
    fn timestamps_are_written_exactly_as_chrono_writes_them() {
        let mut samples: Vec<i64> = vec![
            0,
            1,
            999,
            1_000,
            120_000,
            123_456,
            999_999,
            -1,
            MICROS_YEAR_0,
            MICROS_YEAR_10000 - 1,
            // 2024-02-29T23:59:07.5Z and the first instant of the next day.
            762_566_347_500_000,
            762_566_400_000_000,
        ];
        // A spread over the whole range, with fractions of every kind.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let span = (MICROS_YEAR_10000 - MICROS_YEAR_0) as u64;
            let micros = MICROS_YEAR_0 + (x % span) as i64;
            samples.push(match x % 3 {
                0 => micros - micros.rem_euclid(1_000_000),
                1 => micros - micros.rem_euclid(1_000),
                _ => micros,
            });
        }
        for micros in samples {
            let t = Timestamp::from_pg_micros(micros).expect("in range");
            assert_eq!(ours(t), chrono_json(&t.to_chrono()), "{micros}");
        }
        assert_eq!(Timestamp::from_pg_micros(MICROS_YEAR_0 - 1), None);
        assert_eq!(Timestamp::from_pg_micros(MICROS_YEAR_10000), None);
        assert_eq!(
            Timestamp::from_pg_micros(i64::MAX),
            None,
            "PostgreSQL's infinity"
        );
        assert_eq!(
            ours(Timestamp::from_pg_micros(0).unwrap()),
            "2000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn a_member_is_written_with_every_field_as_serde_would_write_it() {
        let created = Timestamp::from_pg_micros(849_722_400_123_456).unwrap();
        let full = StaffView {
            id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            organization_id: "org_demoCentro",
            clerk_id: Some("user_2abc"),
            full_name: "José \"Zé\" Conceição\t👓",
            email: "ze@otica.example",
            role: StaffRole::Manager,
            department: Some("Lab\\Sala 2"),
            is_active: false,
            avatar_url: Some("https://img.example/a.png?x=1&y=\u{7}"),
            created_at: created,
            updated_at: Timestamp::from_pg_micros(849_722_401_000_000).unwrap(),
        };
        let empty = StaffView {
            clerk_id: None,
            department: None,
            avatar_url: None,
            is_active: true,
            role: StaffRole::Assistant,
            ..full.clone()
        };
        for staff in [&full, &empty] {
            let mut out = Vec::new();
            staff.write_json(&mut out);
            assert!(
                out.len() <= staff.json_size_hint(),
                "the hint sizes the buffer once"
            );
            let ours: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let expected = serde_json::json!({
                "id": staff.id,
                "organization_id": staff.organization_id,
                "clerk_id": staff.clerk_id,
                "full_name": staff.full_name,
                "email": staff.email,
                "role": staff.role,
                "department": staff.department,
                "is_active": staff.is_active,
                "avatar_url": staff.avatar_url,
                "created_at": staff.created_at.to_chrono(),
                "updated_at": staff.updated_at.to_chrono(),
            });
            assert_eq!(ours, expected);
        }
    }

    #[test]
    fn stats_are_written_as_serde_would_write_them() {
        let stats = StaffStats {
            total_users: 5_000,
            active_users: 4_321,
            admins: 0,
            managers: -1,
        };
        let mut out = Vec::new();
        stats.write_json(&mut out).unwrap();
        assert_eq!(out, serde_json::to_vec(&stats).unwrap());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for good in ["ana@x.com", "Ana.Silva+loja@otica.com.br", "  ana@x.com "] {
            assert!(email(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ana",
            "@x.com",
            "ana@",
            "ana@x",
            "ana@@x.com",
            "a na@x.com",
            "ana@x..com",
            "ana@.x.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invisible_or_reordering_characters_are_refused() {
        for bad in [
            "\u{200b}\u{200b}",
            "\u{202e}Ana Souza",
            "Jo\u{2028}Bo",
            "An\u{0}a",
            "A\u{feff}na",
        ] {
            assert!(full_name(bad).is_err(), "{bad:?}");
        }
        assert!(full_name("Zoë Ngữ Ōtsuka").is_ok());
    }

    #[test]
    fn avatar_urls_are_stored_normalized_and_without_credentials() {
        assert_eq!(
            avatar_url("HTTPS://Img.Example/a b").unwrap_err(),
            "must be an http or https URL"
        );
        assert_eq!(
            avatar_url("https://Img.Example/%7Ea.png").unwrap(),
            "https://img.example/%7Ea.png"
        );
        assert!(avatar_url("https://user:pass@img.example/a.png").is_err());
        assert!(avatar_url("http://x.com/\u{0}").is_err());
        assert!(avatar_url("ht\ttp://x.com/").is_err());
    }

    #[test]
    fn full_names_are_trimmed_and_need_two_characters() {
        assert_eq!(full_name("  Jo ").unwrap(), "Jo");
        assert!(full_name(" J ").is_err());
        assert!(full_name(&"x".repeat(FULL_NAME_MAX + 1)).is_err());
    }

    #[test]
    fn every_failing_field_is_reported_at_once() {
        let body = StaffCreate {
            full_name: "A".into(),
            email: "nope".into(),
            role: StaffRole::Staff,
            department: Nullable(None),
            is_active: None,
            avatar_url: Nullable(Some("ftp://x".into())),
            clerk_id: Nullable(None),
        };

        let Err(ApiError::Invalid(fields)) = body.validate() else {
            panic!("expected 422")
        };

        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["full_name", "email", "avatar_url"]);
    }
}
