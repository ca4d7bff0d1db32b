//! `keelson-rcm --repair`: copies a damaged cluster database aside, reads every record redb can still
//! read, and writes them into a fresh database that holds together (a resource whose group was lost
//! gets an empty group of that name; a dependency on a lost resource is dropped), saying what it did.
//! Not the normal open path (lib.rs), which refuses a damaged file.

use crate::guard::guarded;
use crate::{marker, Change, GroupRecord, Snapshot, GROUPS, RESOURCES};
use redb::{Builder, Database, ReadableTable, TableDefinition};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a repair did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Where the damaged file was copied (None if there was no file).
    pub kept_at: Option<PathBuf>,
    pub groups: usize,
    pub resources: usize,
    /// Records or whole tables that could not be read, with why.
    pub unreadable: Vec<String>,
    /// Changes made so the recovered records hold together.
    pub fixes: Vec<String>,
}

impl std::fmt::Display for RepairReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kept_at {
            Some(p) => writeln!(f, "damaged database copied to {}", p.display())?,
            None => writeln!(f, "there was no database file to copy")?,
        }
        for u in &self.unreadable {
            writeln!(f, "unreadable: {u}")?;
        }
        for x in &self.fixes {
            writeln!(f, "fixed: {x}")?;
        }
        write!(
            f,
            "recovered {} groups and {} resources into a fresh database",
            self.groups, self.resources
        )
    }
}

/// Repairs the database at `path` (the node service must not be running: the caller holds the
/// data directory's lock).
pub fn repair(path: &Path) -> Result<RepairReport, String> {
    let mut report = RepairReport::default();
    let mut snapshot = Snapshot::default();
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        let aside = aside_path(path);
        copy_durably(path, &aside)?;
        report.kept_at = Some(aside.clone());
        let work = path.with_extension("redb.recovering");
        copy_durably(path, &work)?;
        snapshot = salvage(&work, &mut report.unreadable);
        std::fs::remove_file(&work)
            .map_err(|e| format!("cannot remove {}: {e}", work.display()))?;
    }
    hold_together(&mut snapshot, &mut report.fixes);
    report.groups = snapshot.groups.len();
    report.resources = snapshot.resources.len();
    write_fresh(path, &snapshot)?;
    Ok(report)
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    path.with_extension(format!("redb.damaged-{stamp}"))
}

fn copy_durably(from: &Path, to: &Path) -> Result<(), String> {
    let fail =
        |e: std::io::Error| format!("cannot copy {} to {}: {e}", from.display(), to.display());
    std::fs::copy(from, to).map_err(fail)?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(fail)?;
    marker::sync_dir(to).map_err(fail)
}

/// Every record redb can read from `path`; what it cannot goes into `unreadable`.
fn salvage(path: &Path, unreadable: &mut Vec<String>) -> Snapshot {
    let mut db = match guarded(|| Builder::new().open(path)) {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => {
            unreadable.push(format!("the whole file: {}", crate::error::reason(&e)));
            return Snapshot::default();
        }
        Err(panic) => {
            unreadable.push(format!("the whole file: {panic}"));
            return Snapshot::default();
        }
    };
    // Let redb rebuild what it can first; reading goes on whatever it says.
    match guarded(|| db.check_integrity()) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => unreadable.push(format!("integrity check: {e}")),
        Err(panic) => unreadable.push(format!("integrity check: {panic}")),
    }
    Snapshot {
        groups: read_table(&db, GROUPS, "groups", unreadable),
        resources: read_table(&db, RESOURCES, "resources", unreadable),
    }
}

/// The decodable records of one table; a panic or error part-way keeps what was read before it.
fn read_table<T: for<'de> serde::Deserialize<'de>>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    name: &str,
    unreadable: &mut Vec<String>,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let outcome = guarded(|| -> Result<(), String> {
        let tx = db.begin_read().map_err(|e| e.to_string())?;
        let table = tx.open_table(table).map_err(|e| e.to_string())?;
        for row in table.iter().map_err(|e| e.to_string())? {
            let (key, value) = row.map_err(|e| e.to_string())?;
            match serde_json::from_slice(value.value()) {
                Ok(record) => out.push(record),
                Err(e) => notes.push(format!("{name} record '{}': {e}", key.value())),
            }
        }
        Ok(())
    });
    unreadable.extend(notes);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => unreadable.push(format!("table {name} (after {} records): {e}", out.len())),
        Err(panic) => unreadable.push(format!(
            "table {name} (after {} records): {panic}",
            out.len()
        )),
    }
    out
}

/// Gives every resource's group a record and drops dependencies on resources that were lost.
fn hold_together(snapshot: &mut Snapshot, fixes: &mut Vec<String>) {
    let mut groups: BTreeSet<String> = snapshot.groups.iter().map(|g| g.name.clone()).collect();
    let names: BTreeSet<String> = snapshot.resources.iter().map(|r| r.name.clone()).collect();
    for r in &mut snapshot.resources {
        if groups.insert(r.group.clone()) {
            fixes.push(format!(
                "group '{}' of resource '{}' was lost: created it empty",
                r.group, r.name
            ));
            snapshot.groups.push(GroupRecord {
                name: r.group.clone(),
                ..Default::default()
            });
        }
        let before: Vec<String> = std::mem::take(&mut r.depends_on);
        for provider in before {
            if names.contains(&provider) {
                r.depends_on.push(provider);
            } else {
                fixes.push(format!(
                    "resource '{}' depended on '{provider}', which was lost: dependency dropped",
                    r.name
                ));
            }
        }
    }
}

/// Writes `snapshot` into a new file next to `path`, then renames it over `path` and keeps the marker.
fn write_fresh(path: &Path, snapshot: &Snapshot) -> Result<(), String> {
    let fresh = path.with_extension("redb.new");
    if fresh.exists() {
        std::fs::remove_file(&fresh)
            .map_err(|e| format!("cannot remove {}: {e}", fresh.display()))?;
    }
    let id = marker::read(path)
        .map_err(|e| format!("cannot read {}: {e}", marker::MARKER_FILE))?
        .unwrap_or_else(marker::new_id);
    {
        let db = crate::create_new(&fresh, false)?;
        let changes: Vec<Change> = snapshot
            .groups
            .iter()
            .cloned()
            .map(Change::PutGroup)
            .chain(snapshot.resources.iter().cloned().map(Change::PutResource))
            .collect();
        crate::write_changes(&db, &changes)?;
    }
    std::fs::rename(&fresh, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    marker::sync_dir(path).map_err(|e| e.to_string())?;
    marker::write(path, &id).map_err(|e| format!("cannot write {}: {e}", marker::MARKER_FILE))
}
