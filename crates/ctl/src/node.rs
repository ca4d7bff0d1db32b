//! `keelson node start` and `keelson node stop`: finding and launching keelson-rcm (detached, or in
//! the foreground with its cluster log on stderr), waiting until the rcm it started answers (a start
//! that lost the data directory to another rcm says so), and stopping it until it has gone. Not the
//! node service itself, and not a supervisor: nothing restarts rcm if it dies later.

use crate::client::Client;
use crate::output::emit_line;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use keelson_proto::view::Status;
use keelson_proto::ControlRequest as R;
use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where packaged plugins live.
pub const SYSTEM_PLUGIN_DIR: &str = "/usr/lib/keelson/plugins";
/// How often start and stop look at the socket.
const POLL: Duration = Duration::from_millis(20);
/// How many lines of rcm.out a failed start shows.
const TAIL_LINES: usize = 20;
/// Tells keelson-rcm it runs in the foreground: it then echoes its cluster log on stderr.
pub const FOREGROUND_ENV: &str = "KEELSON_RCM_FOREGROUND";
/// What keelson-rcm says when another one holds the data directory's lock (rcm.lock).
const LOCK_REFUSAL: &str = "another keelson-rcm is already running on";
/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `keelson node` subcommands.
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Start the node service (keelson-rcm) on the data directory; returns once it answers.
    Start(StartArgs),
    /// Stop the node service; returns once it has gone.
    Stop(StopArgs),
    /// Join a cluster: this node (with no groups of its own) becomes a member and takes the
    /// cluster's configuration.
    Join {
        /// A member's address on a cluster network (ADDR or ADDR:PORT; port 3344 by default).
        #[arg(long, value_name = "ADDR")]
        cluster: String,
        /// The cluster key file `keelson cluster create` wrote (cluster.key in its data directory).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// This node's name in the cluster (default: the node service's node name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a node from the cluster (run on another member); its id is never given out again.
    Evict {
        /// The node's name.
        name: String,
    },
    /// Pause a node: no group is placed on it any more. With --drain its groups all move off it
    /// at once, and the command returns when each is in its state again on its new owner.
    Pause {
        /// The node's name.
        name: String,
        /// Move its groups off it too, and wait for them.
        #[arg(long)]
        drain: bool,
        /// With --drain: give up waiting after this many milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 120_000, requires = "drain")]
        timeout: u64,
    },
    /// Resume a paused node: groups may be placed on it again (and fail back to it where their
    /// AutoFailbackType allows).
    Resume {
        /// The node's name.
        name: String,
    },
    /// List the cluster's nodes: state, id, addresses; the leader is marked with *.
    List {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `keelson node start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Run keelson-rcm in the foreground (its cluster log echoed on stderr) and exit with its status.
    #[arg(long)]
    pub foreground: bool,
    /// A directory of plugin libraries, repeatable (default: this executable's directory if it
    /// holds libkeelson_plugin_*.so files, and /usr/lib/keelson/plugins if it exists).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// How long to wait for the node service to answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 15_000)]
    pub timeout: u64,
}

/// Arguments of `keelson node stop`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// How long to wait for the node service to go, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 15_000)]
    pub timeout: u64,
}

/// Runs one `keelson node` command.
pub async fn run(data_dir: &Path, command: NodeCommand) -> Result<ExitCode> {
    match command {
        NodeCommand::Start(args) => start(data_dir, args).await,
        NodeCommand::Stop(args) => stop(data_dir, args).await.map(|()| ExitCode::SUCCESS),
        NodeCommand::List { .. }
        | NodeCommand::Join { .. }
        | NodeCommand::Evict { .. }
        | NodeCommand::Pause { .. }
        | NodeCommand::Resume { .. } => {
            unreachable!(
                "node list, join, evict, pause and resume are sent to the node service by main"
            )
        }
    }
}

/// keelson-rcm: `KEELSON_RCM`, else next to this executable, else the first one on PATH.
pub fn rcm_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("KEELSON_RCM").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let beside = exe_dir().map(|d| d.join("keelson-rcm"));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Ok(p);
    }
    find_in_path("keelson-rcm", std::env::var_os("PATH")).ok_or_else(|| {
        anyhow!(
            "cannot find keelson-rcm: not next to this executable nor on PATH (set KEELSON_RCM)"
        )
    })
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
}

/// The first regular file called `name` in the directories of `path`.
pub fn find_in_path(name: &str, path: Option<OsString>) -> Option<PathBuf> {
    let path = path?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The plugin directories rcm gets when none is given: `exe_dir` if it holds plugin libraries,
/// then `system` if it exists.
pub fn default_plugin_dirs(exe_dir: Option<&Path>, system: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = exe_dir.filter(|d| holds_plugins(d)) {
        dirs.push(dir.to_path_buf());
    }
    if system.is_dir() {
        dirs.push(system.to_path_buf());
    }
    dirs
}

fn holds_plugins(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("libkeelson_plugin_") && name.ends_with(".so")
    })
}

/// The keelson-rcm command line for this data directory and these plugin directories.
pub fn rcm_command(rcm: &Path, data_dir: &Path, plugin_dirs: &[PathBuf]) -> Command {
    let mut cmd = Command::new(rcm);
    cmd.arg("--data-dir").arg(data_dir);
    for dir in plugin_dirs {
        cmd.arg("--plugin-dir").arg(dir);
    }
    cmd
}

async fn start(data_dir: &Path, args: StartArgs) -> Result<ExitCode> {
    let data_dir = std::path::absolute(data_dir)
        .with_context(|| format!("bad data directory {}", data_dir.display()))?;
    // 0750, as keelson-rcm creates it: the directory holds the cluster database and its secrets.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let client = Client::new(&data_dir);
    if client.answers().await {
        bail!(
            "a node service already answers at {}; stop it first with 'keelson node stop'",
            client.socket().display()
        );
    }
    let rcm = rcm_binary()?;
    let plugin_dirs = if args.plugin_dirs.is_empty() {
        default_plugin_dirs(exe_dir().as_deref(), Path::new(SYSTEM_PLUGIN_DIR))
    } else {
        args.plugin_dirs.clone()
    };
    let mut cmd = rcm_command(&rcm, &data_dir, &plugin_dirs);
    if args.foreground {
        // rcm echoes its cluster log on stderr, which is this terminal.
        cmd.env(FOREGROUND_ENV, "true");
        return foreground(&rcm, cmd).await;
    }
    let child = spawn_detached(&rcm, &mut cmd, &data_dir)?;
    let pid = child.id();
    wait_ready(
        &client,
        child,
        &data_dir,
        Duration::from_millis(args.timeout),
    )
    .await?;
    emit_line(&format!(
        "node service started (keelson-rcm pid {pid}, data directory {})",
        data_dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs rcm with this terminal; Ctrl-C reaches rcm (same process group) and we wait for it to end.
async fn foreground(rcm: &Path, cmd: Command) -> Result<ExitCode> {
    let mut child = tokio::process::Command::from(cmd)
        .spawn()
        .with_context(|| format!("cannot start {}", rcm.display()))?;
    loop {
        tokio::select! {
            status = child.wait() => return Ok(ExitCode::from(exit_code(status?))),
            _ = tokio::signal::ctrl_c() => continue,
        }
    }
}

/// The exit code that mirrors `status`: its code, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        (None, None) => 1,
    }
}

fn spawn_detached(rcm: &Path, cmd: &mut Command, data_dir: &Path) -> Result<Child> {
    let out_path = data_dir.join("rcm.out");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&out_path)
        .with_context(|| format!("cannot open {}", out_path.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    keelson_sys::child::detach(cmd);
    cmd.spawn()
        .with_context(|| format!("cannot start {}", rcm.display()))
}

/// Polls the socket until rcm answers; fails early if rcm exits, or at the deadline. The node that
/// answers must be the one just started: another keelson-rcm that won the data directory's lock
/// (a concurrent `node start`) means this start was refused, and says so.
async fn wait_ready(
    client: &Client,
    mut child: Child,
    data_dir: &Path,
    limit: Duration,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let probe = tokio::time::timeout(PROBE_TIMEOUT, client.view::<Status>(R::Status)).await;
        if let Ok(Ok(status)) = probe {
            // A node service that does not say its pid (0) is taken for the one just started.
            match status.pid {
                0 => return Ok(()),
                pid if pid != child.id() => return Err(already_running(data_dir, Some(pid))),
                _ => return Ok(()),
            }
        }
        if let Some(status) = child.try_wait()? {
            if tail_of_out(data_dir).contains(LOCK_REFUSAL) {
                return Err(already_running(data_dir, None));
            }
            bail!(
                "keelson-rcm exited ({status}) before answering on {}{}",
                client.socket().display(),
                tail_of_out(data_dir)
            );
        }
        if start.elapsed() >= limit {
            bail!(
                "keelson-rcm (pid {}) did not answer on {} within {} ms{}",
                child.id(),
                client.socket().display(),
                limit.as_millis(),
                tail_of_out(data_dir)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The error of a start that found another keelson-rcm holding the data directory.
fn already_running(data_dir: &Path, pid: Option<u32>) -> anyhow::Error {
    let pid = pid
        .map(|p| format!(" (keelson-rcm pid {p})"))
        .unwrap_or_default();
    anyhow!(
        "a node service is already running on {}{pid}; this one was not started (stop the other \
         first with 'keelson node stop')",
        data_dir.display()
    )
}

/// `; last lines of rcm.out:` and those lines, indented, or nothing if it is empty.
fn tail_of_out(data_dir: &Path) -> String {
    let path = data_dir.join("rcm.out");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!(" ({} is empty)", path.display());
    }
    let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    let body: String = tail.iter().map(|l| format!("\n  {l}")).collect();
    format!("; last lines of {}:{body}", path.display())
}

async fn stop(data_dir: &Path, args: StopArgs) -> Result<()> {
    let client = Client::new(data_dir);
    let status: Status = client.view(R::Status).await?;
    let pid = Some(status.pid).filter(|&p| p != 0);
    let message = client.done(R::NodeStop).await?;
    emit_line(&message)?;
    let limit = Duration::from_millis(args.timeout);
    let start = Instant::now();
    while client.accepts().await || pid.is_some_and(keelson_sys::process::is_alive) {
        if start.elapsed() >= limit {
            bail!(
                "the node service on {} did not stop within {} ms",
                client.socket().display(),
                limit.as_millis()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    emit_line("node service stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("keelson-ctl-node-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn default_plugin_dirs_need_plugin_files_or_an_existing_system_dir() {
        let exe = temp_dir("exe");
        let system = temp_dir("sys");
        let missing = exe.join("nope");
        assert_eq!(
            default_plugin_dirs(Some(&exe), &missing),
            Vec::<PathBuf>::new()
        );
        std::fs::write(exe.join("libkeelson_plugin_dummy.so"), b"").unwrap();
        assert_eq!(default_plugin_dirs(Some(&exe), &missing), vec![exe.clone()]);
        assert_eq!(
            default_plugin_dirs(Some(&exe), &system),
            vec![exe.clone(), system.clone()]
        );
        assert_eq!(default_plugin_dirs(None, &system), vec![system.clone()]);
        let _ = std::fs::remove_dir_all(&exe);
        let _ = std::fs::remove_dir_all(&system);
    }

    #[test]
    fn rcm_command_passes_the_data_dir_and_every_plugin_dir() {
        let cmd = rcm_command(
            Path::new("/bin/keelson-rcm"),
            Path::new("/d"),
            &[PathBuf::from("/p1"), PathBuf::from("/p2")],
        );
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--data-dir",
                "/d",
                "--plugin-dir",
                "/p1",
                "--plugin-dir",
                "/p2"
            ]
        );
    }

    #[test]
    fn path_search_finds_the_first_file() {
        let a = temp_dir("path-a");
        let b = temp_dir("path-b");
        std::fs::write(b.join("keelson-rcm"), b"").unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(
            find_in_path("keelson-rcm", Some(path)),
            Some(b.join("keelson-rcm"))
        );
        assert_eq!(find_in_path("keelson-rcm", None), None);
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }

    #[test]
    fn exit_codes_mirror_the_child() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
