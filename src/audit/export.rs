//! Audit rows as people and tools read them: JSON (one object per line) and CSV.

use serde::Serialize;
use serde_json::Value;

use super::repo::StoredRow;

/// The most rows one export holds; a longer range is exported in parts.
pub const MAX_EXPORT_ROWS: usize = 200_000;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditRow {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub time: String,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<StoredRow> for AuditRow {
    fn from(row: StoredRow) -> Self {
        let f = row.fields;
        let time = chrono::DateTime::from_timestamp(f.at, 0)
            .map_or_else(|| f.at.to_string(), |t| t.to_rfc3339());
        Self {
            seq: f.seq,
            time,
            at: f.at,
            actor_kind: f.actor_kind,
            actor_id: f.actor_id,
            action: f.action,
            target: f.target,
            ip: f.ip,
            user_agent: f.user_agent,
            request_id: f.request_id,
            details: serde_json::from_str(&f.details).unwrap_or(Value::Null),
            prev_hash: hex::encode(row.prev_hash),
            hash: hex::encode(row.hash),
        }
    }
}

impl AuditRow {
    /// The row as one line of JSON Lines, newline included.
    pub fn json_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("an audit row serialises");
        line.push('\n');
        line
    }
}

const CSV_COLUMNS: [&str; 13] = [
    "seq",
    "time",
    "at",
    "actor_kind",
    "actor_id",
    "action",
    "target",
    "ip",
    "user_agent",
    "request_id",
    "details",
    "prev_hash",
    "hash",
];

pub fn csv_header() -> Vec<u8> {
    write_csv(CSV_COLUMNS.iter().map(|c| c.to_string()))
}

/// The row as one CSV record. Cells a spreadsheet would run as a formula (a user agent is
/// whatever the client sent) are prefixed with `'`.
pub fn csv_line(row: &AuditRow) -> Vec<u8> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        row.seq.to_string(),
        row.time.clone(),
        row.at.to_string(),
        row.actor_kind.clone(),
        text(&row.actor_id),
        row.action.clone(),
        text(&row.target),
        text(&row.ip),
        text(&row.user_agent),
        text(&row.request_id),
        row.details.to_string(),
        row.prev_hash.clone(),
        row.hash.clone(),
    ];
    write_csv(cells.into_iter().map(neutralise_formula))
}

fn neutralise_formula(cell: String) -> String {
    match cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        true => format!("'{cell}"),
        false => cell,
    }
}

fn write_csv(cells: impl Iterator<Item = String>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(cells)
        .expect("writing CSV to memory cannot fail");
    writer
        .into_inner()
        .expect("an in-memory CSV writer flushes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = AuditRow {
            seq: 1,
            time: "t".into(),
            at: 0,
            actor_kind: "anonymous".into(),
            actor_id: None,
            action: "sign_in.failed".into(),
            target: None,
            ip: Some("192.0.2.1".into()),
            user_agent: Some("=HYPERLINK(\"http://x\",\"a,b\")".into()),
            request_id: None,
            details: serde_json::json!({"reason": "credentials"}),
            prev_hash: "00".into(),
            hash: "11".into(),
        };
        let line = String::from_utf8(csv_line(&row)).unwrap();
        assert!(
            line.contains(r#""'=HYPERLINK(""http://x"",""a,b"")""#),
            "{line}"
        );
        assert!(line.contains(r#""{""reason"":""credentials""}""#), "{line}");
        let header = String::from_utf8(csv_header()).unwrap();
        assert!(header.starts_with("seq,time,at,actor_kind"));
    }
}
