//! How to open one resource in a host: its id, name, plugin file and type, private parameters, the
//! deadline of its OPEN, where its call timings go, its state directory and the node's name. Not the opening itself (host.rs, resource.rs).

use crate::resource::SharedTimings;
use keelson_types::{ResourceId, DEFAULT_DEADLOCK_TIMEOUT_MS};
use std::path::PathBuf;
use std::time::Duration;

/// How to open one resource.
#[derive(Clone, Debug)]
pub struct OpenSpec {
    pub resource: ResourceId,
    pub name: String,
    pub plugin_path: String,
    pub type_name: String,
    /// Private parameters, a JSON object.
    pub params_json: String,
    /// Default deadline of every call on this resource (DeadlockTimeout).
    pub deadlock_timeout: Duration,
    /// Where call timings are recorded; a fresh set per handle when None.
    pub timings: Option<SharedTimings>,
    /// The resource's own directory, which the caller made (the plugin sees it as its state dir).
    pub state_dir: Option<PathBuf>,
    /// This node's name, as the plugin sees it.
    pub node_name: Option<String>,
}

impl OpenSpec {
    pub fn new(resource: ResourceId, name: &str, plugin_path: &str, type_name: &str) -> OpenSpec {
        OpenSpec {
            resource,
            name: name.to_string(),
            plugin_path: plugin_path.to_string(),
            type_name: type_name.to_string(),
            params_json: "{}".to_string(),
            deadlock_timeout: Duration::from_millis(DEFAULT_DEADLOCK_TIMEOUT_MS),
            timings: None,
            state_dir: None,
            node_name: None,
        }
    }

    /// Records call timings into `timings` (e.g. a set that survives re-hosting the resource).
    pub fn timings(mut self, timings: SharedTimings) -> OpenSpec {
        self.timings = Some(timings);
        self
    }

    pub fn params(mut self, json: impl Into<String>) -> OpenSpec {
        self.params_json = json.into();
        self
    }

    pub fn deadlock_timeout(mut self, timeout: Duration) -> OpenSpec {
        self.deadlock_timeout = timeout;
        self
    }

    /// Gives the resource `dir` as its state directory (which must exist).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> OpenSpec {
        self.state_dir = Some(dir.into());
        self
    }

    /// Tells the resource it runs on node `name`.
    pub fn node_name(mut self, name: impl Into<String>) -> OpenSpec {
        self.node_name = Some(name.into());
        self
    }
}
