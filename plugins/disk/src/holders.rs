//! Finding and stopping the processes that hold a mount: every process of this mount namespace
//! whose cwd, root, executable, open files or mapped files lie under the mount point gets SIGTERM,
//! then SIGKILL once the grace time is over. Not the unmount itself.

use keelson_sys::Signal;
use std::path::Path;
use std::time::{Duration, Instant};

/// Pids (not this process) of this mount namespace holding something under `mount_point`.
pub fn holders(mount_point: &Path) -> Vec<u32> {
    let me = std::process::id();
    let my_ns = std::fs::read_link("/proc/self/ns/mnt").ok();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() == my_ns)
        .filter(|pid| holds(*pid, mount_point))
        .collect()
}

fn holds(pid: u32, mount_point: &Path) -> bool {
    let under = |p: &Path| p.starts_with(mount_point);
    let links = ["cwd", "root", "exe"]
        .iter()
        .filter_map(|l| std::fs::read_link(format!("/proc/{pid}/{l}")).ok());
    if links.into_iter().any(|p| under(&p)) {
        return true;
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok());
    if fds.into_iter().any(|p| under(&p)) {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|maps| {
            maps.lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .any(|p| under(Path::new(p)))
        })
        .unwrap_or(false)
}

/// SIGTERM to every holder, SIGKILL to those left after `grace`; returns what it did, or the pids
/// still holding it after the SIGKILL had a second to work.
pub fn stop_holders(mount_point: &Path, grace: Duration) -> Result<String, String> {
    let first = holders(mount_point);
    if first.is_empty() {
        return Ok(String::new());
    }
    signal_all(&first, Signal::SIGTERM)?;
    if wait_gone(mount_point, grace) {
        return Ok(format!("stopped {first:?} with SIGTERM"));
    }
    let left = holders(mount_point);
    signal_all(&left, Signal::SIGKILL)?;
    if wait_gone(mount_point, Duration::from_secs(1)) {
        return Ok(format!("stopped {first:?} (SIGKILL to {left:?})"));
    }
    Err(format!(
        "processes {:?} still hold {} after SIGKILL",
        holders(mount_point),
        mount_point.display()
    ))
}

/// SIGKILL to every holder, without waiting (terminate).
pub fn kill_holders(mount_point: &Path) {
    for pid in holders(mount_point) {
        keelson_sys::process::kill(pid, Signal::SIGKILL).ok();
    }
}

fn signal_all(pids: &[u32], signal: Signal) -> Result<(), String> {
    for pid in pids {
        keelson_sys::process::kill(*pid, signal).map_err(|e| format!("kill {pid}: {e}"))?;
    }
    Ok(())
}

fn wait_gone(mount_point: &Path, limit: Duration) -> bool {
    let started = Instant::now();
    for _ in 0..10_000 {
        if holders(mount_point).is_empty() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_with_its_cwd_under_a_directory_is_found_and_stopped() {
        let dir = std::env::temp_dir().join(format!("keelson-holders-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        let pid = child.id();
        let found = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            holders(&dir).contains(&pid)
        });
        assert!(found, "sleep {pid} not found under {}", dir.display());
        // The child stays a zombie until waited for; a reaper thread waits so it goes.
        let reaper = std::thread::spawn(move || child.wait());
        let done = stop_holders(&dir, Duration::from_secs(5)).unwrap();
        assert!(done.contains("SIGTERM"), "{done}");
        reaper.join().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
