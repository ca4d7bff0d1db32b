//! The cluster database: resources and groups with their common properties, private parameters,
//! dependencies and desired state, in one redb file (`<data-dir>/cluster.redb`). Every change is
//! one atomic, durable transaction. Records are plain serde structs stored as JSON so the file can be
//! inspected and migrated. Not state machines (crates/engine) and not replication (later: openraft).

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Bumped when the record layout changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

pub use keelson_types::{GroupRecord, ResourceRecord};

/// One change to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    PutResource(ResourceRecord),
    DeleteResource(String),
    PutGroup(GroupRecord),
    DeleteGroup(String),
}

/// Everything in the database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub groups: Vec<GroupRecord>,
    pub resources: Vec<ResourceRecord>,
}

/// What went wrong with the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cluster database {path}: {message}")]
    Open { path: String, message: String },
    #[error("cluster database: {0}")]
    Db(String),
    #[error("cluster database record '{key}' is corrupt: {message}")]
    Corrupt { key: String, message: String },
    #[error("cluster database schema version {found}, this rcm reads {SCHEMA_VERSION}")]
    Schema { found: u32 },
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The open database.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens or creates the database file and checks its schema version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let store = Store { db };
        store.init_schema()?;
        Ok(store)
    }

    fn init_schema(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            tx.open_table(RESOURCES).map_err(db_err)?;
            tx.open_table(GROUPS).map_err(db_err)?;
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let found = meta
                .get("schema")
                .map_err(db_err)?
                .map(|v| v.value().to_vec());
            match found {
                None => {
                    meta.insert("schema", SCHEMA_VERSION.to_le_bytes().as_slice())
                        .map_err(db_err)?;
                }
                Some(bytes) => {
                    let found = u32::from_le_bytes(bytes.try_into().unwrap_or([0; 4]));
                    if found != SCHEMA_VERSION {
                        return Err(StoreError::Schema { found });
                    }
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Applies `changes` in one durable transaction: all or nothing.
    pub fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut resources = tx.open_table(RESOURCES).map_err(db_err)?;
            let mut groups = tx.open_table(GROUPS).map_err(db_err)?;
            for change in changes {
                match change {
                    Change::PutResource(r) => {
                        resources
                            .insert(r.name.as_str(), encode(r).as_slice())
                            .map_err(db_err)?;
                    }
                    Change::DeleteResource(name) => {
                        resources.remove(name.as_str()).map_err(db_err)?;
                    }
                    Change::PutGroup(g) => {
                        groups
                            .insert(g.name.as_str(), encode(g).as_slice())
                            .map_err(db_err)?;
                    }
                    Change::DeleteGroup(name) => {
                        groups.remove(name.as_str()).map_err(db_err)?;
                    }
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Reads everything.
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let mut snapshot = Snapshot::default();
        for row in tx
            .open_table(GROUPS)
            .map_err(db_err)?
            .iter()
            .map_err(db_err)?
        {
            let (key, value) = row.map_err(db_err)?;
            snapshot.groups.push(decode(key.value(), value.value())?);
        }
        for row in tx
            .open_table(RESOURCES)
            .map_err(db_err)?
            .iter()
            .map_err(db_err)?
        {
            let (key, value) = row.map_err(db_err)?;
            snapshot.resources.push(decode(key.value(), value.value())?);
        }
        Ok(snapshot)
    }
}

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).expect("records are plain data")
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("keelson-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("cluster.redb")
    }

    #[test]
    fn changes_survive_reopen_and_apply_atomically() {
        let path = temp_db("reopen");
        let group = GroupRecord {
            name: "web".into(),
            want_online: true,
            ..Default::default()
        };
        let mut res = ResourceRecord {
            name: "ip".into(),
            type_name: "dummy".into(),
            group: "web".into(),
            want_online: true,
            ..Default::default()
        };
        res.properties
            .insert("SeparateMonitor".into(), "true".into());
        {
            let store = Store::open(&path).unwrap();
            store
                .apply(&[
                    Change::PutGroup(group.clone()),
                    Change::PutResource(res.clone()),
                ])
                .unwrap();
            store
                .apply(&[Change::PutResource(ResourceRecord {
                    name: "gone".into(),
                    ..res.clone()
                })])
                .unwrap();
            store
                .apply(&[Change::DeleteResource("gone".into())])
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.load().unwrap(),
            Snapshot {
                groups: vec![group],
                resources: vec![res]
            }
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_foreign_file_is_a_clear_error() {
        let path = temp_db("foreign");
        std::fs::write(
            &path,
            b"definitely not a redb file, just text that is long enough",
        )
        .unwrap();
        let err = Store::open(&path).err().expect("must fail").to_string();
        assert!(
            err.starts_with(&format!("cluster database {}:", path.display())),
            "{err}"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
