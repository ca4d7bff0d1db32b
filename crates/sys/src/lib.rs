//! The only keelson crate that calls nix/libc directly: passing file descriptors over Unix sockets,
//! preparing a child process (fd layout, parent-death signal), fatal-signal handlers on an alternate
//! stack, which loaded object an address belongs to, entering a network namespace, opening a TUN
//! device, opening a block device for direct synchronous I/O, mounting it and its persistent
//! reservations, the monotonic clock as a number,
//! test-journal appends (network namespace, flock), and small process queries. Not policy: callers
//! decide what to do with each primitive.

pub mod address_table;
pub mod blockdev;
pub mod child;
pub mod clock;
pub mod crash;
pub mod detached;
pub mod direct_io;
pub mod fdpass;
pub mod journal;
pub mod loaded_object;
pub mod netns;
pub mod packet;
pub mod peer;
pub mod pidfd;
pub mod process;
pub mod tun;

/// The signal type every signal-taking function here uses (nix's, so callers need no nix of their own).
pub use nix::sys::signal::Signal;
