//! The `disk` resource type: an arbitrated shared block device. Online takes the device first (an
//! on-disk lease in its last MiB, renewed every LeaseMs/4, plus a SCSI-3 persistent reservation
//! where the device has them), then runs fsck if asked and mounts it; LooksAlive = mounted and
//! lease held, IsAlive = that plus a read/write probe file within ProbeTimeoutMs; offline stops the
//! processes using the mount, unmounts and releases the lease. Not a cluster filesystem: one node
//! at a time mounts the disk. Parameters and rules: docs/types/disk.md.
#![forbid(unsafe_code)]

pub mod area;
pub mod config;
pub mod fsck;
pub mod holders;
pub mod lease;
pub mod mounts;
pub mod options;
pub mod probe;
pub mod record;
pub mod renewer;
pub mod reservation;
pub mod worker;

use area::LeaseArea;
use config::Config;
use keelson_plugin::{export_plugin, Error, Host, Param, Params, Resource, TypeDefaults};
use lease::{Claim, LeaseIo};
use record::{LeaseState, Sector};
use renewer::Renewer;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Duration;
use worker::Worker;

/// What an online instance holds: the lease I/O, its renewals and the reservation key.
struct Held {
    io: LeaseIo,
    renewer: Renewer,
    reserved: Option<u64>,
}

/// One disk resource.
pub struct Disk {
    config: Config,
    host: Host,
    node: String,
    probe: Worker,
    held: Option<Held>,
}

/// This node's name, which the lease record names as the holder (the host's; the kernel's host
/// name under a host that gives none, e.g. a detached one in unit tests).
fn node_name(host: &Host) -> String {
    host.node_name().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    })
}

impl Resource for Disk {
    const TYPE_NAME: &'static std::ffi::CStr = c"disk";
    const PARAMS: Option<&'static [Param]> = Some(config::PARAMS);
    const DEFAULTS: TypeDefaults = config::DEFAULTS;

    fn validate(params: &Params) -> Result<(), Error> {
        let config = Config::parse(params)?;
        check_device(&config, Duration::from_secs(2))
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        Ok(Disk {
            config: Config::parse(params)?,
            node: node_name(&host),
            host,
            probe: Worker::new("probe"),
            held: None,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        if self.still_online() {
            return Ok(());
        }
        if let Some(old) = self.held.take() {
            old.renewer.stop();
        }
        let io = self.lease_io()?;
        check_filesystem_size(&io, &self.config)?;
        let held = self.take_disk(io)?;
        let mounted = self.mount_or_adopt(&held.io);
        self.held = Some(held);
        if let Err(e) = mounted {
            self.give_back();
            return Err(e);
        }
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        if self.mounted_here()? {
            let stopped = holders::stop_holders(&self.config.mount_point, self.config.stop_timeout)
                .map_err(Error::new)?;
            if !stopped.is_empty() {
                self.host.info(&format!(
                    "{} held by processes: {stopped}",
                    self.config.mount_point.display()
                ));
            }
            self.unmount()?;
        }
        match self.held.take() {
            Some(held) => self.release(held),
            None => self.release_stale_record(),
        }
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        let Some(held) = &self.held else {
            return Err(Error::not_running("disk is not online on this instance"));
        };
        held.renewer.check(self.config.lease).map_err(Error::new)?;
        if !self.mounted_here()? {
            return Err(Error::not_running(format!(
                "{} is not mounted on {}",
                self.config.device.display(),
                self.config.mount_point.display()
            )));
        }
        Ok(())
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        self.looks_alive()?;
        let target = self.config.mount_point.join(probe::PROBE_FILE);
        let text = format!("{} {}\n", self.node, lease::now_ms());
        self.probe
            .run(self.config.probe_timeout, move || {
                probe::write_read(&target, &text)
            })
            .map_err(|e| Error::new(format!("{}: {e}", self.config.mount_point.display())))
    }

    fn terminate(&mut self) -> Result<(), Error> {
        if let Some(held) = self.held.take() {
            held.renewer.stop();
        }
        if self.mounted_here()? {
            holders::kill_holders(&self.config.mount_point);
            keelson_sys::blockdev::detach(&self.config.mount_point)
                .map_err(|e| Error::new(e.to_string()))?;
            self.host.warn(&format!(
                "terminate: {} detached (lazy unmount); the lease is left to expire",
                self.config.mount_point.display()
            ));
        }
        Ok(())
    }

    fn close(mut self) {
        if let Some(held) = self.held.take() {
            held.renewer.stop();
        }
    }
}

impl Disk {
    /// Already online on this instance: lease renewed and the device mounted here.
    fn still_online(&self) -> bool {
        let Some(held) = &self.held else { return false };
        held.renewer.check(self.config.lease).is_ok() && self.mounted_here().unwrap_or(false)
    }

    fn lease_io(&self) -> Result<LeaseIo, Error> {
        if !self.config.device.exists() {
            return Err(Error::not_installed(format!(
                "Device {} does not exist on this node",
                self.config.device.display()
            )));
        }
        let device = self.config.device.clone();
        let worker = Worker::new("lease");
        let area = worker
            .run(self.config.lease, move || LeaseArea::open(&device))
            .map_err(Error::new)?;
        Ok(LeaseIo {
            area,
            worker,
            claim: Claim {
                node: self.node.clone(),
                incarnation: lease::random_incarnation(),
                lease: self.config.lease,
            },
        })
    }

    /// The lease, its renewals, then the reservation where the device has one.
    fn take_disk(&self, io: LeaseIo) -> Result<Held, Error> {
        let device = self.config.device.display().to_string();
        let host = self.host;
        let (record, previous) = io
            .acquire(&|what| host.info(&format!("disk {device}: {what}")))
            .map_err(|r| Error::new(r.message(&device)))?;
        self.host.info(&format!(
            "disk {device}: lease taken (generation {}{})",
            record.generation,
            previous
                .as_ref()
                .map(|p| format!(", after node {p}'s lease ran out"))
                .unwrap_or_default()
        ));
        let renewer =
            Renewer::start(io.clone(), record, self.host, self.fence()).map_err(Error::new)?;
        let mut held = Held {
            io,
            renewer,
            reserved: None,
        };
        match reservation::reserve(&held.io, &self.node, previous.as_deref()) {
            Ok(Some(key)) => held.reserved = Some(key),
            Ok(None) => {}
            Err(e) => {
                let failed = Error::new(format!("disk {device}: {e}"));
                self.release(held)?;
                return Err(failed);
            }
        }
        Ok(held)
    }

    /// Mounts the device, or adopts a mount of it that is already there (a dead host's).
    fn mount_or_adopt(&self, io: &LeaseIo) -> Result<(), Error> {
        let mp = &self.config.mount_point;
        if self.mounted_here()? {
            self.host.info(&format!(
                "{} already mounted on {}: adopted",
                self.config.device.display(),
                mp.display()
            ));
            return Ok(());
        }
        if let Some(other) = mounts::current_mount_on(mp).map_err(Error::new)? {
            return Err(Error::misconfigured(format!(
                "MountPoint {} already has {} ({}) mounted on it",
                mp.display(),
                other.source,
                other.fstype
            )));
        }
        std::fs::create_dir_all(mp)
            .map_err(|e| Error::new(format!("create MountPoint {}: {e}", mp.display())))?;
        if self.config.fsck_on_online {
            let said = fsck::check(&io.area.device, &self.config.fstype)?;
            if !said.is_empty() {
                self.host.warn(&said);
            }
        }
        let (flags, data) =
            options::parse(&self.config.mount_options).map_err(Error::misconfigured)?;
        keelson_sys::blockdev::mount(&self.config.device, mp, &self.config.fstype, flags, &data)
            .map_err(|e| Error::new(e.to_string()))?;
        self.host.info(&format!(
            "{} mounted on {}",
            self.config.device.display(),
            mp.display()
        ));
        Ok(())
    }

    /// The device is the topmost mount on MountPoint in this mount namespace.
    fn mounted_here(&self) -> Result<bool, Error> {
        mounted(&self.config.device, &self.config.mount_point).map_err(Error::new)
    }

    /// The renewer's fence for a lost lease: SIGKILL to the mount's users and a lazy unmount, so
    /// this node stops writing before another node's lease wait ends.
    fn fence(&self) -> renewer::Fence {
        let (device, mount_point) = (self.config.device.clone(), self.config.mount_point.clone());
        Box::new(move || {
            if !mounted(&device, &mount_point).unwrap_or(true) {
                return None;
            }
            holders::kill_holders(&mount_point);
            Some(match keelson_sys::blockdev::detach(&mount_point) {
                Ok(()) => format!("lease lost: {} detached", mount_point.display()),
                Err(e) => format!("lease lost: {e}"),
            })
        })
    }

    fn unmount(&self) -> Result<(), Error> {
        let mp = &self.config.mount_point;
        let mut last = None;
        for _ in 0..50 {
            match keelson_sys::blockdev::unmount(mp) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => last = Some(e),
                Err(e) => return Err(Error::new(e.to_string())),
            }
            holders::kill_holders(mp);
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Error::new(format!(
            "{} stays busy: {}",
            mp.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// After a failed online: unmount nothing (nothing was mounted), give the lease back.
    fn give_back(&mut self) {
        if let Some(held) = self.held.take() {
            if let Err(e) = self.release(held) {
                self.host.warn(e.message());
            }
        }
    }

    /// Stops the renewals, writes a released record, drops the reservation.
    fn release(&self, held: Held) -> Result<(), Error> {
        let last = held.renewer.stop();
        if let Some(key) = held.reserved {
            reservation::release(&held.io, key).map_err(Error::new)?;
        }
        let device = self.config.device.display().to_string();
        held.io
            .release(last.generation, last.renewals)
            .map_err(|r| Error::new(r.message(&device)))?;
        self.host.info(&format!("disk {device}: lease released"));
        Ok(())
    }

    /// Offline on an instance that never came online (a new host after a host death): a record
    /// this node still holds is released, another node's is left alone.
    fn release_stale_record(&self) -> Result<(), Error> {
        if !self.config.device.exists() {
            return Ok(());
        }
        let io = self.lease_io()?;
        let device = self.config.device.display().to_string();
        match io.read().map_err(|r| Error::new(r.message(&device)))? {
            Sector::Record(r) if r.state == LeaseState::Held && r.holder == self.node => io
                .release(r.generation, r.renewals)
                .map_err(|r| Error::new(r.message(&device))),
            _ => Ok(()),
        }
    }
}

/// `device` is the topmost mount on `mount_point` in this mount namespace.
fn mounted(device: &std::path::Path, mount_point: &std::path::Path) -> Result<bool, String> {
    let Some(entry) = mounts::current_mount_on(mount_point)? else {
        return Ok(false);
    };
    let Ok(meta) = std::fs::metadata(device) else {
        return Ok(false);
    };
    Ok(mounts::split_dev(meta.rdev()) == (entry.major, entry.minor))
}

/// Validation's device check: a path that exists must be a block device whose filesystem leaves
/// the reserved last MiB alone (a device missing on this node is checked at online instead).
fn check_device(config: &Config, limit: Duration) -> Result<(), Error> {
    let Ok(meta) = std::fs::metadata(&config.device) else {
        return Ok(());
    };
    if !meta.file_type().is_block_device() {
        return Err(Error::misconfigured(format!(
            "parameter 'Device'=\"{}\": not a block device",
            config.device.display()
        )));
    }
    let device = config.device.clone();
    let worker = Worker::new("superblock");
    let (fs, size) = worker
        .run(limit, move || {
            let area = LeaseArea::open(&device)?;
            Ok((area.filesystem_bytes()?, area.device_bytes))
        })
        .map_err(|e| Error::misconfigured(format!("parameter 'Device': {e}")))?;
    if let Some(fs) = fs {
        area::check_leaves_reserved_area(&config.device, fs, size)
            .map_err(|e| Error::misconfigured(format!("parameter 'Device': {e}")))?;
    }
    Ok(())
}

/// Online's check of the same, on the lease lane.
fn check_filesystem_size(io: &LeaseIo, config: &Config) -> Result<(), Error> {
    let area = io.area.clone();
    let fs = io
        .worker
        .run(config.lease, move || area.filesystem_bytes())
        .map_err(Error::new)?;
    match fs {
        Some(fs) => area::check_leaves_reserved_area(&config.device, fs, io.area.device_bytes)
            .map_err(Error::misconfigured),
        None => Err(Error::misconfigured(format!(
            "Device {} holds no filesystem keelson can size (ext2/3/4 or xfs); FsType {}",
            config.device.display(),
            config.fstype
        ))),
    }
}

export_plugin!(name: c"disk", types: [Disk]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_valid() {
        let schema = keelson_plugin::schema::<Disk>();
        schema.check_declaration().unwrap();
        assert!(schema.declared);
        assert_eq!(schema.defaults.pending_timeout_ms, Some(120_000));
    }

    #[test]
    fn the_lease_holder_is_the_hosts_node_name() {
        let params = Params::parse(r#"{"Device":"/dev/loop9","MountPoint":"/mnt/x"}"#)
            .unwrap()
            .checked(&keelson_plugin::schema::<Disk>())
            .unwrap();
        let dir = std::env::temp_dir();
        let disk = Disk::open(&params, Host::for_tests(&dir, "n7", "d")).unwrap();
        assert_eq!(disk.node, "n7");
    }

    #[test]
    fn a_regular_file_is_not_a_device() {
        let params = Params::parse(r#"{"Device":"/proc/self/status","MountPoint":"/mnt/x"}"#)
            .unwrap()
            .checked(&keelson_plugin::schema::<Disk>())
            .unwrap();
        let err = Disk::validate(&params).unwrap_err();
        assert!(err.message().contains("'Device'"), "{}", err.message());
    }

    #[test]
    fn offline_of_a_disk_never_online_here_changes_nothing() {
        let params =
            Params::parse(r#"{"Device":"/nonexistent/dev/d","MountPoint":"/nonexistent/m"}"#)
                .unwrap()
                .checked(&keelson_plugin::schema::<Disk>())
                .unwrap();
        let mut disk = Disk::open(&params, Host::detached()).unwrap();
        disk.offline().unwrap();
        assert_eq!(
            disk.looks_alive().unwrap_err().kind(),
            keelson_plugin::ErrorKind::NotRunning
        );
        let err = disk.online().unwrap_err();
        assert_eq!(err.kind(), keelson_plugin::ErrorKind::NotInstalled);
        assert!(err.message().contains("/nonexistent/dev/d"));
    }
}
