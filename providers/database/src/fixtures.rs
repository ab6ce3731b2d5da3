//! Test fixtures shared by every kind's unit tests: a rendered declaration and an observation
//! of an object this owner made.

use orkestra_provider::{Declaration, Observation, Owner, Ownership};
use serde_json::{json, Value};

/// `item` declared as `driver`'s `kind`, on server `h`, for the CR `ns/app` of Katalog `k`.
pub fn decl(driver: &str, kind: &str, item: Value) -> Declaration {
    let s = crate::schema();
    let mut item = item.as_object().cloned().unwrap();
    item.insert("driver".into(), json!(driver));
    item.insert("connection".into(), json!({"host": "h"}));
    let d = Declaration::from_rendered(
        "database",
        s.kind(kind).unwrap(),
        &item,
        Owner {
            uid: "u1".into(),
            namespace: "ns".into(),
            name: "app".into(),
            katalog: "k".into(),
        },
    )
    .unwrap();
    crate::schema::check_driver(&d).unwrap();
    d
}

/// An existing object carrying `d`'s ownership mark, with `fields` observed.
pub fn ours(d: &Declaration, fields: Value) -> Observation {
    Observation {
        exists: true,
        tags: d.owner.tags(),
        ownership: Ownership::Ours,
        fields: fields.as_object().cloned().unwrap(),
        ..Observation::default()
    }
}
