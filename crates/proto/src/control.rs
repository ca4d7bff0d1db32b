//! The keelson <-> rcm control protocol on `<data-dir>/rcm.sock`: one [`ControlEnvelope`] per
//! connection (carrying the protocol version), answered by one or more [`ControlReply`] frames.
//! Views (status, resource, group, lists: the structs of [`crate::view`]) travel as JSON text
//! because the CLI prints JSON and tables from them; commands are typed enum variants. Not authorisation or audit (rcm does that).

use serde::{Deserialize, Serialize};

/// Version of the control protocol; a mismatch is refused with a clear error.
pub const CONTROL_PROTOCOL_VERSION: u32 = 2;

/// `Name=Value` pairs as given on the command line, in order.
pub type Assignments = Vec<(String, String)>;

/// What a client sends: the version it speaks and one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlEnvelope {
    pub version: u32,
    pub request: ControlRequest,
}

/// One request; one variant per CLI command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlRequest {
    /// Node, groups, resources and hosts.
    Status,
    /// The plugin catalogue.
    PluginList,
    GroupCreate {
        name: String,
        properties: Assignments,
    },
    GroupDelete {
        name: String,
    },
    GroupOnline {
        name: String,
    },
    /// Move a group to another node (`to`, or the best other one): offline on its owner first.
    GroupMove {
        name: String,
        to: Option<String>,
    },
    GroupOffline {
        name: String,
    },
    GroupGet {
        name: String,
    },
    GroupList,
    GroupSet {
        name: String,
        properties: Assignments,
    },
    ResourceCreate {
        name: String,
        type_name: String,
        group: String,
        params: Assignments,
        properties: Assignments,
    },
    /// Common properties (PascalCase names) and private parameters, set and removed in one request.
    ResourceSet {
        name: String,
        properties: Assignments,
        params: Assignments,
        /// Private parameters to remove.
        unset_params: Vec<String>,
    },
    ResourceGet {
        name: String,
    },
    ResourceList,
    ResourceOnline {
        name: String,
    },
    ResourceOffline {
        name: String,
    },
    /// Inject a failure through the restart policy (WSFC's "simulate failure").
    ResourceFail {
        name: String,
    },
    ResourceDelete {
        name: String,
    },
    ResourceDepend {
        name: String,
        on: String,
    },
    /// Remove the dependency of `name` on `on`.
    ResourceUndepend {
        name: String,
        on: String,
    },
    /// The last `lines` lines of the cluster log, then (with follow) every new one.
    Log {
        lines: u32,
        follow: bool,
    },
    /// The last `last` events, then (with follow) every new one.
    Events {
        last: u32,
        follow: bool,
    },
    /// Stop the node service.
    NodeStop,
    /// Make this node (and its configuration) a cluster of the nodes listed: `(name, addresses)`.
    ClusterCreate {
        name: String,
        nodes: Vec<(String, Vec<String>)>,
        /// The virtual adapter's subnet (`ADDR/PREFIX`); None: the default (169.254.1.0/24).
        virtual_subnet: Option<String>,
    },
    /// The cluster: name, leader, term, quorum.
    ClusterStatus,
    /// The cluster's nodes and their states.
    NodeList,
    /// The cluster networks' routes and their states.
    NetworkList,
    /// Check the cluster's networks (WSFC's Validate a Configuration, network part).
    Validate,
    /// Remove a node from the cluster (its id is never reused).
    NodeEvict {
        name: String,
    },
    /// Pause a node: no group is placed on it; with `drain`, its groups all move off it.
    NodePause {
        name: String,
        drain: bool,
    },
    /// Resume a paused node: groups may be placed on it again.
    NodeResume {
        name: String,
    },
    /// Join the cluster a member at `cluster` (`ADDR[:PORT]`) belongs to, with the key in `key_file`
    /// (read by the node service), as `name` (default: the node's name).
    NodeJoin {
        cluster: String,
        key_file: String,
        name: Option<String>,
    },
    /// The cluster-wide properties named (all of them when none is), each with its value, default
    /// and range.
    ClusterGet {
        names: Vec<String>,
    },
    /// Set cluster-wide properties (`SameSubnetDelay=2000`), all or none, committed on a majority.
    ClusterSet {
        properties: Assignments,
    },
    /// The quorum model, votes and witness (`witness` None), or set the witness: a directory (a
    /// file-share witness) or a block device (a disk witness), or `none` to remove it.
    ClusterQuorum {
        witness: Option<String>,
    },
}

impl ControlRequest {
    /// Whether the request changes anything (and so is authorised strictly and audited).
    pub fn is_mutating(&self) -> bool {
        !matches!(
            self,
            ControlRequest::Status
                | ControlRequest::PluginList
                | ControlRequest::GroupGet { .. }
                | ControlRequest::GroupList
                | ControlRequest::ResourceGet { .. }
                | ControlRequest::ResourceList
                | ControlRequest::Log { .. }
                | ControlRequest::Events { .. }
                | ControlRequest::ClusterStatus
                | ControlRequest::NodeList
                | ControlRequest::NetworkList
                | ControlRequest::Validate
                | ControlRequest::ClusterGet { .. }
                | ControlRequest::ClusterQuorum { witness: None }
        )
    }
}

/// What rcm answers. A request gets exactly one of `Json`, `Done` or `Error`, except `Log`/`Events`,
/// which get `Line`s and, unless following, `End`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlReply {
    /// A view (one of [`crate::view`]), as JSON text.
    Json(String),
    /// A change was accepted; the message says what it did.
    Done { message: String },
    /// The request was refused or failed; nothing changed.
    Error { message: String },
    /// One line of a log or event stream.
    Line(String),
    /// End of a finite stream.
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_mutation_is_classified() {
        let env = ControlEnvelope {
            version: CONTROL_PROTOCOL_VERSION,
            request: ControlRequest::ResourceSet {
                name: "disk".into(),
                properties: vec![("DeadlockTimeout".into(), "200".into())],
                params: vec![],
                unset_params: vec![],
            },
        };
        let frame = crate::encode(&env).unwrap();
        assert_eq!(crate::decode::<ControlEnvelope>(&frame[4..]).unwrap(), env);
        assert!(env.request.is_mutating());
        assert!(!ControlRequest::Status.is_mutating());
        assert!(ControlRequest::NodeStop.is_mutating());
        assert!(!ControlRequest::ClusterGet { names: vec![] }.is_mutating());
        assert!(ControlRequest::ClusterSet { properties: vec![] }.is_mutating());
        assert!(!ControlRequest::ClusterQuorum { witness: None }.is_mutating());
        assert!(ControlRequest::ClusterQuorum {
            witness: Some("none".into())
        }
        .is_mutating());
    }
}
