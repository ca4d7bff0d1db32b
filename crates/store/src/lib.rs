//! The cluster database: resources and groups with their common properties, private parameters,
//! dependencies and desired state, in one redb file (`<data-dir>/cluster.redb`, mode 0640). Every
//! change is one atomic, durable transaction, or an error with nothing saved; after a write error
//! the file is reopened (redb refuses all work after an I/O error until then), and while it cannot
//! be, changes are refused. A missing or empty file in a data directory that has held a database is
//! an error, never a silent new cluster. Records are plain serde structs stored as JSON so the file
//! can be inspected and migrated. Not state machines (crates/engine) and not replication.
#![forbid(unsafe_code)]

mod error;
mod guard;
pub mod marker;
mod repair;

pub use error::{io_reason, StoreError};
pub use repair::{repair, RepairReport};

use guard::guarded;
use redb::{Builder, Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Bumped when the record layout changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

pub use keelson_types::{GroupRecord, ResourceRecord};

/// One change to apply: the engine's own change type, written as it is.
pub use keelson_types::RecordChange as Change;

/// Everything in the database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub groups: Vec<GroupRecord>,
    pub resources: Vec<ResourceRecord>,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The open database.
pub struct Store {
    path: PathBuf,
    /// None after a write error until the file could be reopened.
    db: Option<Database>,
    /// Why the database is unavailable, while it is.
    broken: Option<String>,
}

impl Store {
    /// Opens the database file, or creates it (mode 0640) in a data directory that never held one,
    /// and checks its schema version and integrity. A damaged file is an error naming it, not a panic.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let open_err = |message: String| StoreError::Open {
            path: shown.clone(),
            message,
        };
        let marker = marker::read(path)
            .map_err(|e| open_err(format!("cannot read {}: {e}", marker::MARKER_FILE)))?;
        let len = match std::fs::metadata(path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(open_err(io_reason(&e))),
        };
        let db = match (len, marker) {
            (None | Some(0), Some(id)) => {
                return Err(StoreError::Vanished {
                    path: shown,
                    what: if len.is_none() { "missing" } else { "empty" },
                    id,
                    marker: marker::path_for(path).display().to_string(),
                })
            }
            (None | Some(0), None) => {
                let db = create_new(path, len == Some(0)).map_err(open_err)?;
                marker::write(path, &marker::new_id())
                    .map_err(|e| open_err(format!("cannot write {}: {e}", marker::MARKER_FILE)))?;
                db
            }
            (Some(_), marker) => {
                let db = open_existing(path).map_err(open_err)?;
                if marker.is_none() {
                    // A data directory from before the marker existed: it holds a database now.
                    marker::write(path, &marker::new_id()).map_err(|e| {
                        open_err(format!("cannot write {}: {e}", marker::MARKER_FILE))
                    })?;
                }
                db
            }
        };
        Ok(Store {
            path: path.to_path_buf(),
            db: Some(db),
            broken: None,
        })
    }

    /// None while the database works; otherwise why it does not (changes are refused meanwhile).
    pub fn health(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Applies `changes` in one durable transaction: all or nothing. On an error nothing is saved,
    /// and the file is reopened so that the next change can succeed once the cause is gone.
    pub fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let db = self.writable()?;
        let outcome = guarded(|| write_changes(db, changes))
            .unwrap_or_else(|panic| Err(format!("the database library failed: {panic}")));
        outcome.map_err(|reason| {
            self.reopen();
            StoreError::Write(reason)
        })
    }

    /// The database to write to, reopening it first if an earlier error closed it.
    fn writable(&mut self) -> Result<&Database, StoreError> {
        if self.db.is_none() {
            self.reopen();
        }
        match &self.db {
            Some(db) => Ok(db),
            None => Err(StoreError::Unavailable {
                path: self.path.display().to_string(),
                reason: self.broken.clone().unwrap_or_default(),
            }),
        }
    }

    /// Closes and reopens the file (redb fails every operation after an I/O error until then).
    fn reopen(&mut self) {
        self.db = None;
        match open_existing(&self.path) {
            Ok(db) => {
                self.db = Some(db);
                self.broken = None;
            }
            Err(reason) => self.broken = Some(reason),
        }
    }

    /// Reads everything.
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let Some(db) = &self.db else {
            return Err(StoreError::Unavailable {
                path: self.path.display().to_string(),
                reason: self.broken.clone().unwrap_or_default(),
            });
        };
        guarded(|| read_all(db)).unwrap_or_else(|panic| {
            Err(StoreError::Open {
                path: self.path.display().to_string(),
                message: format!("cannot be read ({panic}); {REPAIR_HINT}"),
            })
        })
    }
}

/// What an administrator can do about a damaged file.
const REPAIR_HINT: &str =
    "the file may be damaged: run `keelson-rcm --data-dir DIR --repair` to recover what can be read";

/// A new database with its schema in a new file created with mode 0640 (a 0-byte leftover is
/// replaced), durable in its directory. The caller writes the marker.
pub(crate) fn create_new(path: &Path, replace_empty: bool) -> Result<Database, String> {
    if replace_empty {
        std::fs::remove_file(path).map_err(|e| io_reason(&e))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io_reason(&e))?;
    let db = guarded(|| Builder::new().create_file(file))
        .map_err(|p| format!("cannot be created: {p}"))?
        .map_err(|e| error::reason(&e))?;
    init_schema(&db)?;
    marker::sync_dir(path).map_err(|e| io_reason(&e))?;
    Ok(db)
}

/// Opens an existing file, checks the schema and the integrity of every page.
pub(crate) fn open_existing(path: &Path) -> Result<Database, String> {
    let mut db = guarded(|| Builder::new().open(path))
        .map_err(|p| format!("cannot be read ({p}); {REPAIR_HINT}"))?
        .map_err(|e| format!("{}; {REPAIR_HINT}", error::reason(&e)))?;
    guarded(|| db.check_integrity())
        .map_err(|p| format!("fails its integrity check ({p}); {REPAIR_HINT}"))?
        .map_err(|e| {
            format!(
                "fails its integrity check ({}); {REPAIR_HINT}",
                error::reason(&e)
            )
        })?;
    init_schema(&db)?;
    Ok(db)
}

fn init_schema(db: &Database) -> Result<(), String> {
    guarded(|| try_init_schema(db))
        .map_err(|p| format!("cannot be read ({p}); {REPAIR_HINT}"))?
        .map_err(|e| e.to_string())
}

fn try_init_schema(db: &Database) -> Result<(), StoreError> {
    let tx = db.begin_write().map_err(db_err)?;
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

/// One write transaction with every change; the reason it failed, if it did.
pub(crate) fn write_changes(db: &Database, changes: &[Change]) -> Result<(), String> {
    let why = |e: &(dyn std::error::Error + 'static)| error::reason(e);
    let tx = db.begin_write().map_err(|e| why(&e))?;
    {
        let mut resources = tx.open_table(RESOURCES).map_err(|e| why(&e))?;
        let mut groups = tx.open_table(GROUPS).map_err(|e| why(&e))?;
        for change in changes {
            let done = match change {
                Change::PutResource(r) => resources
                    .insert(r.name.as_str(), encode(r).as_slice())
                    .map(drop),
                Change::DeleteResource(name) => resources.remove(name.as_str()).map(drop),
                Change::PutGroup(g) => groups
                    .insert(g.name.as_str(), encode(g).as_slice())
                    .map(drop),
                Change::DeleteGroup(name) => groups.remove(name.as_str()).map(drop),
            };
            done.map_err(|e| why(&e))?;
        }
    }
    tx.commit().map_err(|e| why(&e))
}

fn read_all(db: &Database) -> Result<Snapshot, StoreError> {
    let tx = db.begin_read().map_err(db_err)?;
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
            let mut store = Store::open(&path).unwrap();
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

    fn sample() -> (GroupRecord, ResourceRecord) {
        let group = GroupRecord {
            name: "web".into(),
            ..Default::default()
        };
        let res = ResourceRecord {
            name: "ip".into(),
            type_name: "dummy".into(),
            group: "web".into(),
            ..Default::default()
        };
        (group, res)
    }

    #[test]
    fn a_new_database_is_0640_and_marks_its_directory() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_db("mode");
        drop(Store::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o027, 0, "cluster.redb mode {mode:o}");
        let marker_mode = std::fs::metadata(marker::path_for(&path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(marker_mode & 0o027, 0, "cluster.id mode {marker_mode:o}");
        assert!(marker::read(&path).unwrap().is_some());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn an_emptied_or_deleted_database_is_refused_once_the_directory_held_one() {
        let path = temp_db("vanished");
        drop(Store::open(&path).unwrap());
        std::fs::write(&path, b"").unwrap();
        let err = Store::open(&path)
            .err()
            .expect("empty must fail")
            .to_string();
        assert!(
            err.contains("is empty, but this data directory held one"),
            "{err}"
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = Store::open(&path)
            .err()
            .expect("missing must fail")
            .to_string();
        assert!(err.contains("is missing"), "{err}");
        // Nothing was created by the refusals.
        assert!(!path.exists());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn an_empty_file_in_a_directory_that_never_held_a_database_is_new() {
        let path = temp_db("fresh-empty");
        std::fs::write(&path, b"").unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Snapshot::default());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Garbage written over every part of a real database in turn: opening or reading it is an
    /// error naming the file, never a panic.
    #[test]
    fn garbage_written_into_a_database_is_an_error_never_a_panic() {
        let path = temp_db("garbage");
        {
            let mut store = Store::open(&path).unwrap();
            let (g, r) = sample();
            store
                .apply(&[Change::PutGroup(g), Change::PutResource(r)])
                .unwrap();
        }
        let pristine = std::fs::read(&path).unwrap();
        let step = (pristine.len() / 24).max(512);
        let mut refused = 0;
        for at in (0..pristine.len()).step_by(step) {
            let mut bytes = pristine.clone();
            let end = (at + 256).min(bytes.len());
            for (i, b) in bytes[at..end].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
            std::fs::write(&path, &bytes).unwrap();
            match Store::open(&path).and_then(|s| s.load()) {
                Ok(_) => {}
                Err(e) => {
                    refused += 1;
                    let e = e.to_string();
                    assert!(
                        e.contains(&path.display().to_string()) || e.contains("record"),
                        "{e}"
                    );
                }
            }
        }
        assert!(refused > 0, "no corruption was noticed at all");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn repair_keeps_the_damaged_file_and_recovers_what_reads() {
        let path = temp_db("repair");
        {
            let mut store = Store::open(&path).unwrap();
            let (g, r) = sample();
            let orphan = ResourceRecord {
                name: "orphan".into(),
                group: "lost".into(),
                depends_on: vec!["ghost".into()],
                ..r.clone()
            };
            store
                .apply(&[
                    Change::PutGroup(g),
                    Change::PutResource(r),
                    Change::PutResource(orphan),
                ])
                .unwrap();
        }
        let id = marker::read(&path).unwrap();
        let report = repair(&path).unwrap();
        let kept = report.kept_at.clone().expect("copied aside");
        assert!(kept.exists());
        assert_eq!((report.groups, report.resources), (2, 2), "{report}");
        assert!(
            report.fixes.iter().any(|f| f.contains("'lost'")),
            "{report}"
        );
        assert!(
            report.fixes.iter().any(|f| f.contains("'ghost'")),
            "{report}"
        );
        assert_eq!(marker::read(&path).unwrap(), id, "the database id is kept");
        let snap = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(snap.resources.len(), 2);

        // A file that is garbage from end to end: nothing recovered, a working empty database.
        std::fs::write(&path, vec![0xA5u8; 64 * 1024]).unwrap();
        assert!(Store::open(&path).is_err());
        let report = repair(&path).unwrap();
        assert_eq!((report.groups, report.resources), (0, 0));
        assert!(!report.unreadable.is_empty(), "{report}");
        assert_eq!(
            Store::open(&path).unwrap().load().unwrap(),
            Snapshot::default()
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
