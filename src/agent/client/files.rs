//! Reads a folder of source files into records: each `.json` or `.csv` file is one
//! collection named after the file. A file that cannot be read stops the sync rather than
//! being skipped, since skipping it would look like its records were deleted.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the folder {0} cannot be read")]
    Folder(PathBuf, #[source] std::io::Error),
    #[error("the file {0} cannot be read")]
    Unreadable(PathBuf, #[source] std::io::Error),
    #[error("the file {0} is not a JSON object or an array of objects")]
    BadJson(PathBuf),
    #[error("the file {0} is not valid CSV with a header row")]
    BadCsv(PathBuf),
    #[error("the files {0} and {1} would both be the collection {2}; rename one")]
    SameCollection(PathBuf, PathBuf, String),
    #[error("the file {0} has two records with the same id")]
    DuplicateId(PathBuf),
}

/// Every record in the folder: collection → record id → content.
pub type Snapshot = BTreeMap<String, BTreeMap<String, Value>>;

pub fn read_folder(folder: &Path) -> Result<Snapshot, SourceError> {
    let folder_error = |e| SourceError::Folder(folder.into(), e);
    let mut paths = Vec::new();
    for entry in fs::read_dir(folder).map_err(folder_error)? {
        let path = entry.map_err(folder_error)?.path();
        if kind(&path).is_some() && fs::metadata(&path).map_err(folder_error)?.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut snapshot = Snapshot::new();
    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in paths {
        let records = match kind(&path) {
            Some(Kind::Json) => read_json(&path)?,
            Some(Kind::Csv) => read_csv(&path)?,
            None => continue,
        };
        let collection = collection_name(&path);
        if let Some(first) = sources.insert(collection.clone(), path.clone()) {
            return Err(SourceError::SameCollection(first, path, collection));
        }
        let mut by_id = BTreeMap::new();
        for (id, record) in records {
            if by_id.insert(id, record).is_some() {
                return Err(SourceError::DuplicateId(path));
            }
        }
        snapshot.insert(collection, by_id);
    }
    Ok(snapshot)
}

enum Kind {
    Json,
    Csv,
}

fn kind(path: &Path) -> Option<Kind> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "json" => Some(Kind::Json),
        "csv" => Some(Kind::Csv),
        _ => None,
    }
}

/// The file's stem as a collection name: lowercase letters, digits and `_`, starting with
/// a letter, at most 64 characters.
pub fn collection_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("records");
    let mut name: String = stem
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "c_");
    }
    name.truncate(64);
    name
}

/// The record's own `id` field when it has one, else its position (from 1) as `#N`, so a
/// position never passes for an id a record gives itself.
fn record_id(data: &Map<String, Value>, position: usize) -> String {
    match data.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_string(),
        Some(Value::Number(id)) => id.to_string(),
        _ => format!("#{position}"),
    }
}

fn read_json(path: &Path) -> Result<Vec<(String, Value)>, SourceError> {
    let text = fs::read_to_string(path).map_err(|e| SourceError::Unreadable(path.into(), e))?;
    let items = match serde_json::from_str(&text).map_err(|_| SourceError::BadJson(path.into()))? {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return Err(SourceError::BadJson(path.into())),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(map) => Ok((record_id(&map, index + 1), Value::Object(map))),
            _ => Err(SourceError::BadJson(path.into())),
        })
        .collect()
}

fn read_csv(path: &Path) -> Result<Vec<(String, Value)>, SourceError> {
    let bad = || SourceError::BadCsv(path.into());
    let mut reader = csv::Reader::from_path(path).map_err(|_| bad())?;
    let headers = reader.headers().map_err(|_| bad())?.clone();
    reader
        .records()
        .enumerate()
        .map(|(index, row)| {
            let row = row.map_err(|_| bad())?;
            let map: Map<String, Value> = headers
                .iter()
                .zip(row.iter())
                .map(|(key, value)| (key.trim().to_string(), Value::String(value.to_string())))
                .collect();
            Ok((record_id(&map, index + 1), Value::Object(map)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_csv_files_become_collections_of_records() {
        let dir = std::env::temp_dir().join(format!("sbx-agent-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("Customers.json"),
            r#"[{"id": "c1", "name": "Ada"}, {"name": "Grace"}]"#,
        )
        .unwrap();
        fs::write(dir.join("2026 orders.CSV"), "id,total\no1,10\no2,20\n").unwrap();
        fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let snapshot = read_folder(&dir).unwrap();
        assert_eq!(
            snapshot.keys().collect::<Vec<_>>(),
            ["c_2026_orders", "customers"]
        );
        assert_eq!(snapshot["customers"]["c1"]["name"], "Ada");
        assert_eq!(snapshot["customers"]["#2"]["name"], "Grace");
        assert_eq!(snapshot["c_2026_orders"]["o2"]["total"], "20");

        fs::write(dir.join("customers.csv"), "id,name\nc9,Bea\n").unwrap();
        assert!(matches!(
            read_folder(&dir),
            Err(SourceError::SameCollection(..))
        ));
        fs::remove_file(dir.join("customers.csv")).unwrap();
        fs::write(dir.join("twice.json"), r#"[{"id": 1}, {"id": "1"}]"#).unwrap();
        assert!(matches!(
            read_folder(&dir),
            Err(SourceError::DuplicateId(_))
        ));
        fs::remove_file(dir.join("twice.json")).unwrap();
        fs::write(dir.join("broken.json"), "[1, 2").unwrap();
        assert!(matches!(read_folder(&dir), Err(SourceError::BadJson(_))));
        fs::remove_dir_all(dir).unwrap();
    }
}
