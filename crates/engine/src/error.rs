//! Why an administrator request was refused. Not failures of resources: those are states and events.

use crate::state::ResourceState;
use keelson_types::PropertyError;

/// A refused request. The engine is left exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("unknown resource '{0}'")]
    UnknownResource(String),
    #[error("unknown group '{0}'")]
    UnknownGroup(String),
    #[error("resource '{0}' already exists")]
    ResourceExists(String),
    #[error("group '{0}' already exists")]
    GroupExists(String),
    #[error("a {0} name must not be empty")]
    EmptyName(&'static str),
    #[error("group '{group}' still holds resources: {resources}")]
    GroupNotEmpty { group: String, resources: String },
    #[error("resource '{name}' is {state}; take it offline before deleting it")]
    NotOffline { name: String, state: ResourceState },
    #[error(
        "resource '{name}' is still a dependency of {dependents}; remove those dependencies first"
    )]
    StillDependedOn { name: String, dependents: String },
    #[error("resource '{0}' cannot depend on itself")]
    SelfDependency(String),
    #[error(
        "resource '{resource}' (group '{group}') cannot depend on '{provider}' (group '{provider_group}'): \
         dependencies must stay within one group"
    )]
    CrossGroup {
        resource: String,
        group: String,
        provider: String,
        provider_group: String,
    },
    #[error("making '{resource}' depend on '{provider}' would create a dependency cycle: {cycle}")]
    Cycle {
        resource: String,
        provider: String,
        cycle: String,
    },
    #[error("resource '{resource}' does not depend on '{provider}'")]
    NoSuchDependency { resource: String, provider: String },
    #[error("cannot make '{resource}' depend on '{provider}' now: '{resource}' is {state} and '{provider}' is {provider_state}")]
    ProviderNotOnline {
        resource: String,
        state: ResourceState,
        provider: String,
        provider_state: ResourceState,
    },
    #[error("cannot fail resource '{name}': it is {state}, not Online")]
    NotOnline { name: String, state: ResourceState },
    #[error("resource '{resource}' has no parameter '{key}' to remove")]
    NoSuchParam { resource: String, key: String },
    #[error("parameter '{key}' is given more than once")]
    DuplicateParam { key: String },
    #[error("nothing to set on resource '{0}': give Prop=Value, --param k=v or --unset-param k")]
    NothingToSet(String),
    #[error("nothing to set on group '{0}': give Prop=Value")]
    NothingToSetOnGroup(String),
    #[error("{0}")]
    Property(#[from] PropertyError),
}

/// Why `handle_committed` changed nothing: the engine refused the event, or its changes could not
/// be made durable.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal<E> {
    Engine(EngineError),
    Storage(E),
}

impl<E: std::fmt::Display> std::fmt::Display for Refusal<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Engine(e) => write!(f, "{e}"),
            Refusal::Storage(e) => write!(f, "{e}"),
        }
    }
}
