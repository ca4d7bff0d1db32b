//! One host process as rcm sees it: the handle to start it, load plugins in it, open resources in it,
//! wait for its death or kill it. Not starting the process (spawn.rs), reading it (supervisor.rs),
//! per-resource calls (resource.rs) nor restart policy.

use crate::config::HostConfig;
use crate::death::HostDied;
use crate::error::{CallError, HostError};
use crate::event::HostEvents;
use crate::link::Link;
use crate::resource::ResourceHandle;
use crate::spawn;
use crate::spec::OpenSpec;
use keelson_proto::{CallDone, HostRequest, OpenResource};
use keelson_types::PluginInfo;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long loading a plugin may take (library initialisers run in the host).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A running host. Cheap to clone; the process exits when the last clone (and every resource
/// handle) is dropped, because its control socket then closes.
#[derive(Clone)]
pub struct Host {
    link: Arc<Link>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("pid", &self.pid()).finish()
    }
}

impl Host {
    /// Starts a host and waits for its Hello (at most `config.hello_timeout`).
    pub async fn spawn(config: &HostConfig) -> Result<(Host, HostEvents), HostError> {
        let (link, events) = spawn::spawn(config).await?;
        Ok((Host { link }, events))
    }

    /// rcm's end of the host's lease socket (None: started without a lease), for a renewer.
    pub fn lease_socket(&self) -> Option<Arc<std::os::unix::net::UnixDatagram>> {
        self.link.shared.lease.clone()
    }

    /// The host's process id (its MonitorProcessId).
    pub fn pid(&self) -> u32 {
        self.link.shared.pid
    }

    /// The death report, if the host has died.
    pub fn death(&self) -> Option<HostDied> {
        self.link.shared.death.borrow().clone()
    }

    /// Waits until the host has died and been reaped.
    pub async fn died(&self) -> HostDied {
        self.link.shared.died().await
    }

    /// SIGKILLs the host (no-op if already dead). The death is reported as `Killed`.
    pub fn kill(&self) {
        self.link.shared.kill();
    }

    /// Asks the host to exit and waits for its death report.
    pub async fn shutdown(&self) -> HostDied {
        let _ = self.link.send(&HostRequest::Shutdown).await;
        self.died().await
    }

    /// Loads (dlopens) a plugin in the host and returns what it offers (at most 30 s).
    pub async fn load_plugin(&self, path: &str) -> Result<PluginInfo, HostError> {
        self.load_plugin_within(path, LOAD_TIMEOUT).await
    }

    /// Loads a plugin; if the host has not answered within `limit` (a library initialiser that never
    /// returns), the host is SIGKILLed and the load is reported as [`HostError::LoadHung`].
    pub async fn load_plugin_within(
        &self,
        path: &str,
        limit: Duration,
    ) -> Result<PluginInfo, HostError> {
        let req = self.link.next_req();
        let (tx, rx) = oneshot::channel();
        self.link.shared.lock_pending().insert(req, tx);
        self.link
            .send(&HostRequest::LoadPlugin {
                req,
                path: path.to_string(),
            })
            .await?;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result.map_err(HostError::Plugin),
            Ok(Err(_)) => Err(HostError::Died(self.died().await)),
            Err(_) => {
                self.kill();
                let died = self.died().await;
                Err(HostError::LoadHung {
                    path: path.to_string(),
                    limit_ms: limit.as_millis() as u64,
                    pid: died.pid,
                })
            }
        }
    }

    /// Opens a resource: hands the host a socket of its own, runs OPEN, and returns its handle.
    pub async fn open(&self, spec: OpenSpec) -> Result<ResourceHandle, HostError> {
        if spec.resource.0 == 0 {
            return Err(HostError::ReservedId);
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(io_err)?;
        self.link
            .shared
            .lock_names()
            .insert(spec.resource, spec.name.clone());
        let request = HostRequest::Open(open_resource(&spec));
        self.link.send_with_fd(&request, theirs.as_fd()).await?;
        drop(theirs);
        ours.set_nonblocking(true).map_err(io_err)?;
        let stream = tokio::net::UnixStream::from_std(ours).map_err(io_err)?;
        ResourceHandle::open(self.link.clone(), &spec, stream).await
    }

    /// Runs the type's VALIDATE on `spec`'s parameters with nothing opened, within
    /// `spec.deadlock_timeout` (past it the host kills itself, as for any call). The plugin's
    /// answer, refusal included, is `Ok`; only a death or a broken link is an error.
    pub async fn validate(&self, spec: OpenSpec) -> Result<CallDone, CallError> {
        if spec.resource.0 == 0 {
            return Err(CallError::Protocol(HostError::ReservedId.to_string()));
        }
        let protocol = |e: HostError| CallError::Protocol(e.to_string());
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(io_err)
            .map_err(protocol)?;
        self.link
            .shared
            .lock_names()
            .insert(spec.resource, spec.name.clone());
        let request = HostRequest::Validate(open_resource(&spec));
        self.link
            .send_with_fd(&request, theirs.as_fd())
            .await
            .map_err(protocol)?;
        drop(theirs);
        ours.set_nonblocking(true)
            .map_err(io_err)
            .map_err(protocol)?;
        let stream = tokio::net::UnixStream::from_std(ours)
            .map_err(io_err)
            .map_err(protocol)?;
        ResourceHandle::validate_once(self.link.clone(), &spec, stream).await
    }
}

fn io_err(e: std::io::Error) -> HostError {
    HostError::Protocol(e.to_string())
}

/// The host protocol's description of the resource `spec` opens or validates.
fn open_resource(spec: &OpenSpec) -> OpenResource {
    OpenResource {
        resource: spec.resource,
        name: spec.name.clone(),
        plugin_path: spec.plugin_path.clone(),
        type_name: spec.type_name.clone(),
        params_json: spec.params_json.clone(),
        deadline_ms: spec.deadlock_timeout.as_millis() as u64,
        state_dir: spec
            .state_dir
            .as_ref()
            .map(|d| d.to_string_lossy().into_owned()),
        node_name: spec.node_name.clone(),
    }
}
