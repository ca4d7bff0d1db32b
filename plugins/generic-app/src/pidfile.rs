//! The pid file in the resource's state directory: which process is the app (its pid, its start
//! time, so a reused pid is never taken for it, and its cgroup), written atomically (a temporary
//! file, fsync, rename, fsync of the directory) so a host that dies mid-write leaves the old file
//! or the new one, never half of one. Not the process itself (app.rs).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What the pid file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidRecord {
    pub pid: u32,
    pub start_time: u64,
    pub cgroup: Option<PathBuf>,
}

/// The pid file of one resource.
#[derive(Clone, Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn in_dir(state_dir: &Path) -> PidFile {
        PidFile {
            path: state_dir.join("pid"),
        }
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record, None when there is no pid file; an unreadable or malformed one is an error
    /// naming the file (it is never guessed at).
    pub fn read(&self) -> Result<Option<PidRecord>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("pid file {}: {e}", self.path.display())),
        };
        parse(&text)
            .map(Some)
            .map_err(|e| format!("pid file {}: {e}", self.path.display()))
    }

    /// Replaces the file with `record`, durably.
    pub fn write(&self, record: &PidRecord) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut text = format!("pid {}\nstart_time {}\n", record.pid, record.start_time);
        if let Some(cgroup) = &record.cgroup {
            text.push_str(&format!("cgroup {}\n", cgroup.display()));
        }
        let named = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("{what} {}: {e}", tmp.display()))
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)
            .map_err(|e| named("create", e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| named("write", e))?;
        file.sync_all().map_err(|e| named("fsync", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| named("rename", e))?;
        self.sync_dir()
    }

    /// Removes the file; one that is gone already is done.
    pub fn remove(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("remove {}: {e}", self.path.display()),
            )),
        }
    }

    fn sync_dir(&self) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io::Error::new(e.kind(), format!("fsync {}: {e}", dir.display())))
    }
}

fn parse(text: &str) -> Result<PidRecord, String> {
    let mut pid = None;
    let mut start_time = None;
    let mut cgroup = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once(' ')
            .ok_or_else(|| format!("malformed line {line:?}"))?;
        match key {
            "pid" => {
                pid = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| format!("bad pid {value:?}"))?,
                )
            }
            "start_time" => {
                start_time = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| format!("bad start_time {value:?}"))?,
                )
            }
            "cgroup" => cgroup = Some(PathBuf::from(value)),
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    Ok(PidRecord {
        pid: pid.ok_or("no pid")?,
        start_time: start_time.ok_or("no start_time")?,
        cgroup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_removed_file_reads_as_none() {
        let dir = std::env::temp_dir().join(format!("keelson-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = PidFile::in_dir(&dir);
        assert_eq!(file.read().unwrap(), None);
        let record = PidRecord {
            pid: 42,
            start_time: 1234,
            cgroup: Some(PathBuf::from("/sys/fs/cgroup/keelson.slice/a.scope")),
        };
        file.write(&record).unwrap();
        assert_eq!(file.read().unwrap(), Some(record));
        assert!(!dir.join("pid.tmp").exists());
        file.remove().unwrap();
        file.remove().unwrap();
        assert_eq!(file.read().unwrap(), None);
        std::fs::write(file.path(), "pid x\n").unwrap();
        let err = file.read().unwrap_err();
        assert!(
            err.contains("bad pid \"x\"") && err.contains("/pid"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
