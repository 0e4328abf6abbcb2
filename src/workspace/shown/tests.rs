use rusqlite::Connection;
use serde_json::{Value, json};

use super::*;
use crate::workspace::policy::{self, parse_rule};
use crate::workspace::records::{
    self, Aggregate, CollectionName, Filter, Group, Op, RecordData, RecordId, RecordLimits,
};

const LIMITS: RecordLimits = RecordLimits {
    max_record_bytes: 4096,
    max_fields: 20,
};

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::store::migrate_workspace_for_tests(&mut conn);
    conn
}

fn put(conn: &Connection, collection: &str, id: &str, data: Value) {
    let writer = ShownWriter::open(conn).unwrap();
    records::upsert(
        conn,
        &writer,
        &CollectionName::parse(collection).unwrap(),
        &RecordId::parse(id).unwrap(),
        &RecordData::new(data, LIMITS).unwrap(),
        100,
    )
    .unwrap();
}

fn rule(conn: &Connection, term: &str, action: &str, alias: &str) {
    policy::put_rule(conn, &parse_rule(term, action, alias).unwrap(), 1).unwrap();
    ShownWriter::open(conn).unwrap();
}

fn ids(hits: &[ShownHit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

fn rows(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM shown_records", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn every_write_keeps_the_records_shown_row_in_step() {
    let conn = db();
    rule(&conn, "Acme Corp", "alias", "Client A");
    put(
        &conn,
        "people",
        "ada@example.com",
        json!({"name": "Ada", "email": "ada@example.com", "note": "Acme Corp pays"}),
    );
    let shown = get(&conn, "people", "[EMAIL_1]", 2).unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(
        shown[0].data,
        json!({"name": "Ada", "email": "[EMAIL_1]", "note": "Client A pays"})
    );
    assert_eq!(shown[0].masked["EMAIL"], 2, "the id and the data");
    assert_eq!(shown[0].masked["TERM_ALIAS"], 1);
    assert!(
        get(&conn, "people", "ada@example.com", 2)
            .unwrap()
            .is_empty()
    );
    assert_eq!(ids(&search(&conn, "client", 10, 0).unwrap()), ["[EMAIL_1]"]);
    for raw in ["ada@example.com", "acme", "example"] {
        assert!(search(&conn, raw, 10, 0).unwrap().is_empty(), "{raw}");
    }

    put(&conn, "people", "ada@example.com", json!({"name": "Grace"}));
    let updated = get(&conn, "people", "[EMAIL_1]", 2).unwrap();
    assert_eq!(updated[0].data, json!({"name": "Grace"}));
    assert_eq!(updated[0].version, 2);
    assert!(search(&conn, "client", 10, 0).unwrap().is_empty());
    assert_eq!(rows(&conn), 1);

    let people = CollectionName::parse("people").unwrap();
    let id = RecordId::parse("ada@example.com").unwrap();
    assert!(records::tombstone(&conn, &people, &id, 200).unwrap());
    assert_eq!(rows(&conn), 0);
    assert!(search(&conn, "grace", 10, 0).unwrap().is_empty());
}

#[test]
fn a_write_that_skips_the_index_hides_the_record_rather_than_leave_it_stale() {
    let conn = db();
    put(&conn, "notes", "n1", json!({"text": "visible words"}));
    conn.execute(
        "UPDATE records SET data = '{\"text\":\"ada@example.com\"}' WHERE id = 'n1'",
        [],
    )
    .unwrap();
    assert_eq!(rows(&conn), 0);
    assert!(search(&conn, "visible", 10, 0).unwrap().is_empty());
    // Deleting what the index no longer holds is harmless.
    conn.execute("DELETE FROM records WHERE id = 'n1'", [])
        .unwrap();
    put(&conn, "notes", "n2", json!({"text": "visible again"}));
    assert_eq!(ids(&search(&conn, "visible", 10, 0).unwrap()), ["n2"]);
}

#[test]
fn a_right_and_a_wrong_guess_find_the_same_rows_and_cursor() {
    let conn = db();
    rule(&conn, "Project Falcon", "redact", "");
    for n in 0..4 {
        put(
            &conn,
            "people",
            &format!("p{n}"),
            json!({"email": "ada@example.com", "note": "Project Falcon"}),
        );
    }
    for (right, wrong) in [("ada@example.com", "bob@example.com"), ("Falcon", "Condor")] {
        for offset in [0, 2] {
            assert_eq!(
                search(&conn, right, 3, offset).unwrap(),
                search(&conn, wrong, 3, offset).unwrap()
            );
        }
        assert!(search(&conn, right, 3, 0).unwrap().is_empty());
    }
    // What is shown is found, and pages like any other hit.
    assert_eq!(search(&conn, "redacted", 3, 0).unwrap().len(), 3);
    assert_eq!(search(&conn, "EMAIL_1", 3, 2).unwrap().len(), 2);
}

#[test]
fn a_rule_change_rebuilds_the_index_and_a_stale_one_is_refused() {
    let conn = db();
    put(
        &conn,
        "notes",
        "n1",
        json!({"text": "Acme Corp and Globex"}),
    );
    let current = |conn: &Connection| is_current(conn, &policy::load(conn).unwrap().rules).unwrap();
    assert!(current(&conn));
    assert_eq!(ids(&search(&conn, "acme", 10, 0).unwrap()), ["n1"]);

    rule(&conn, "Acme Corp", "redact", "");
    assert!(current(&conn));
    assert!(search(&conn, "acme", 10, 0).unwrap().is_empty());
    assert_eq!(ids(&search(&conn, "redacted", 10, 0).unwrap()), ["n1"]);

    assert!(policy::remove_rule(&conn, "Acme Corp").unwrap());
    assert!(!current(&conn), "rules changed without the index");
    ShownWriter::open(&conn).unwrap();
    assert!(current(&conn));
    assert_eq!(ids(&search(&conn, "acme", 10, 0).unwrap()), ["n1"]);

    // An index built by a binary that masks differently is not current either.
    conn.execute(
        "UPDATE meta SET value = 'built-elsewhere' WHERE key = 'shown_version'",
        [],
    )
    .unwrap();
    assert!(!current(&conn));
    ShownWriter::open(&conn).unwrap();
    assert!(current(&conn));
    assert_eq!(rows(&conn), 1);
}

#[test]
fn the_tag_follows_every_rule_change() {
    let alias = parse_rule("Acme Corp", "alias", "Client A").unwrap();
    let other_alias = parse_rule("Acme Corp", "alias", "Client B").unwrap();
    let redact = parse_rule("Acme Corp", "redact", "").unwrap();
    let tags = [
        tag(&[]),
        tag(std::slice::from_ref(&alias)),
        tag(&[other_alias]),
        tag(&[redact]),
    ];
    let distinct: std::collections::HashSet<&String> = tags.iter().collect();
    assert_eq!(distinct.len(), tags.len());
    assert_eq!(tag(std::slice::from_ref(&alias)), tags[1]);
}

fn filter(field: &str, op: Op, value: Value) -> Filter {
    Filter {
        field: field.into(),
        op,
        value,
    }
}

#[test]
fn queries_and_aggregates_filter_sort_and_group_on_shown_values_with_bound_parameters() {
    let conn = db();
    rule(&conn, "Acme Corp", "alias", "Client A");
    rule(&conn, "codename", "redact", "");
    put(
        &conn,
        "orders",
        "o1",
        json!({"status": "open", "total": 10, "city": "Pune", "card": "4111 1111 1111 1111"}),
    );
    put(
        &conn,
        "orders",
        "o2",
        json!({"status": "paid", "total": 25, "city": "Acme Corp", "card": "none"}),
    );
    put(
        &conn,
        "orders",
        "o3",
        json!({"status": "open", "total": 5, "city": "Pune", "card": "none", "codename_x": 1}),
    );
    let ids = |filters: &[Filter], sort: Option<(&str, bool)>| -> Vec<String> {
        query(&conn, "orders", filters, sort, 10, 0)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let open = filter("status", Op::Eq, json!("open"));
    assert_eq!(
        ids(std::slice::from_ref(&open), Some(("total", true))),
        ["o1", "o3"]
    );
    assert_eq!(
        ids(&[filter("total", Op::Gte, json!(10))], None),
        ["o1", "o2"]
    );
    assert!(ids(&[filter("status", Op::Eq, json!("open' OR '1'='1"))], None).is_empty());
    // Shown values only: the card is `[CARD_1]`, the city an alias.
    assert!(ids(&[filter("card", Op::Contains, json!("4"))], None).is_empty());
    assert_eq!(
        ids(
            &[filter("card", Op::Ne, json!("4111 1111 1111 1111"))],
            None
        ),
        ids(
            &[filter("card", Op::Ne, json!("5555 5555 5555 4444"))],
            None
        )
    );
    assert_eq!(
        ids(&[filter("card", Op::Eq, json!("[CARD_1]"))], None),
        ["o1"]
    );
    assert_eq!(
        ids(&[filter("city", Op::Eq, json!("Client A"))], None),
        ["o2"]
    );
    assert!(ids(&[filter("city", Op::Contains, json!("Acme"))], None).is_empty());
    assert_eq!(ids(&[], Some(("city", false))), ["o2", "o1", "o3"]);
    // A field shown under a masked name is asked for by that name.
    assert_eq!(
        ids(&[filter("[REDACTED]_x", Op::Eq, json!(1))], None),
        ["o3"]
    );
    assert!(
        query(&conn, "nowhere", &[], None, 10, 0)
            .unwrap()
            .is_empty()
    );

    let sums = aggregate(
        &conn,
        "orders",
        Aggregate::Sum,
        Some("total"),
        Some("city"),
        &[],
        10,
    )
    .unwrap();
    assert_eq!(
        sums,
        vec![
            Group {
                key: json!("Client A"),
                value: json!(25.0)
            },
            Group {
                key: json!("Pune"),
                value: json!(15.0)
            },
        ]
    );
    let count = aggregate(&conn, "orders", Aggregate::Count, None, None, &[open], 10).unwrap();
    assert_eq!(count[0].value, json!(2));
    let max = aggregate(&conn, "orders", Aggregate::Max, Some("card"), None, &[], 10).unwrap();
    assert_eq!(max[0].value, json!("none"));

    let fields: Vec<String> = field_summary(&conn, "orders")
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(fields, ["[REDACTED]_x", "card", "city", "status", "total"]);
    assert_eq!(collections(&conn).unwrap(), vec![("orders".to_string(), 3)]);
}

#[test]
fn records_showing_the_same_id_are_all_found() {
    let conn = db();
    put(&conn, "contacts", "zed@example.com", json!({"n": 1}));
    put(&conn, "contacts", "amy@example.com", json!({"n": 2}));
    let found = get(&conn, "contacts", "[EMAIL_1]", 2).unwrap();
    assert_eq!(found.len(), 2);
    // Ties are broken by age, never by the raw id behind the mask.
    let order: Vec<Value> = query(&conn, "contacts", &[], None, 10, 0)
        .unwrap()
        .into_iter()
        .map(|r| r.data["n"].clone())
        .collect();
    assert_eq!(order, [json!(1), json!(2)]);
}
