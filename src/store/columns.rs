//! Typed values out of database rows, shared by the domains' repo files: a bad stored
//! value becomes a column conversion error, never a panic.

use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, Type, ValueRef};
use rusqlite::{Row, ToSql};

use crate::crypto::token::SecretHash;
use crate::ids::MembershipId;

/// A text column parsed into `T` (ids, roles, stages, emails).
pub fn parsed<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|_| rusqlite::Error::InvalidColumnType(index, "parse".into(), Type::Text))
}

/// A 32-byte blob column holding the SHA-256 of a secret.
pub fn secret_hash(row: &Row<'_>, index: usize) -> rusqlite::Result<SecretHash> {
    let bytes: Vec<u8> = row.get(index)?;
    let array = <[u8; 32]>::try_from(bytes)
        .map_err(|_| rusqlite::Error::InvalidColumnType(index, "hash".into(), Type::Blob))?;
    Ok(SecretHash(array))
}

/// Membership ids are INTEGER columns (see `MembershipId`).
impl ToSql for MembershipId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.stored()))
    }
}

impl FromSql for MembershipId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(MembershipId::from_stored)
    }
}
