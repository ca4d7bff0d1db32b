//! The only keelson crate that calls nix/libc directly: passing file descriptors over Unix sockets,
//! preparing a child process (fd layout, parent-death signal), fatal-signal handlers on an alternate
//! stack, entering a network namespace, and small process queries. Not policy: callers decide what
//! to do with each primitive.

pub mod child;
pub mod crash;
pub mod fdpass;
pub mod netns;
pub mod peer;
pub mod process;
