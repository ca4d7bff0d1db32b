//! Running a resource type's `validate` entry point for `resource create` and `resource set --param`
//! in throwaway keelson-rhs processes, off the core's thread, each with a deadline: VALIDATE with
//! nothing opened (the host protocol's `Validate`, after the host's own schema check), and report
//! the verdict to the core as an `Input`. A few validation hosts per plugin file are kept warm for a
//! short while, each used by one validation at a time (a burst of creates does not start a process
//! each); a host whose validation hung, crashed or ran past the deadline is killed and never
//! reused. Plugin code never runs in rcm. What plugin
//! code logs while being validated is not kept: it may quote the very values being checked. Not the
//! decision of what to validate or the schema check (core/validation_gate.rs).

use crate::core::Input;
use keelson_host::{CallError, DeathCause, Host, HostConfig, HostDied, HostError, OpenSpec};
use keelson_types::{signal_name, Op, ResourceId};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Validations running at once (each holds one host).
const CONCURRENT_VALIDATIONS: usize = 4;
/// How long an idle validation host is kept for the next validation of its plugin file.
const IDLE_HOST_LIFETIME: Duration = Duration::from_secs(10);
/// Extra time past twice the VALIDATE call's deadline and the host's watchdog grace before rcm
/// gives up on a host that says nothing at all (its own watchdog normally ends it long before).
const BACKSTOP_MARGIN: Duration = Duration::from_secs(2);

/// One validation to run.
#[derive(Clone, Debug)]
pub struct ValidationJob {
    pub ticket: u64,
    /// The resource being created or changed (named in every refusal).
    pub resource: String,
    pub type_name: String,
    /// The plugin file that provides the type.
    pub plugin_path: String,
    /// The whole parameter set the resource would have, the type's declared defaults filled in.
    pub params: BTreeMap<String, String>,
    /// The bound of each call (the resource's effective DeadlockTimeout, capped).
    pub deadline: Duration,
}

/// What a validation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// One line naming the resource, the type, the step and the reason (not yet redacted).
    Refused(String),
}

/// A finished validation, for the core.
#[derive(Debug)]
pub struct ValidationDone {
    pub ticket: u64,
    pub verdict: Verdict,
    pub elapsed: Duration,
}

/// The validation hosts and where verdicts go. Cheap to clone.
#[derive(Clone)]
pub struct Validator {
    shared: Arc<Shared>,
}

struct Shared {
    config: HostConfig,
    slots: Arc<Semaphore>,
    idle: Mutex<Idle>,
    next_resource: AtomicU64,
    tx: mpsc::UnboundedSender<Input>,
}

struct IdleHost {
    host: Host,
    since: Instant,
}

/// The idle hosts by plugin file, and the files whose idle hosts a reaper task watches.
#[derive(Default)]
struct Idle {
    by_path: HashMap<String, Vec<IdleHost>>,
    reaped: std::collections::HashSet<String>,
}

impl Validator {
    /// Validators start hosts by `config` (without a lease: they hold nothing online) and report to
    /// the core on `tx`.
    pub fn new(config: HostConfig, tx: mpsc::UnboundedSender<Input>) -> Validator {
        Validator {
            shared: Arc::new(Shared {
                config: HostConfig {
                    lease: None,
                    ..config
                },
                slots: Arc::new(Semaphore::new(CONCURRENT_VALIDATIONS)),
                idle: Mutex::new(Idle::default()),
                next_resource: AtomicU64::new(1),
                tx,
            }),
        }
    }

    /// Starts `job`; its verdict reaches the core as `Input::Validated`, never awaited here.
    pub fn start(&self, job: ValidationJob) {
        let shared = self.shared.clone();
        let span =
            tracing::info_span!("validate", resource = %job.resource, r#type = %job.type_name);
        let run = async move {
            let Ok(_slot) = shared.slots.clone().acquire_owned().await else {
                return;
            };
            let start = Instant::now();
            let verdict = shared.validate(&job).await;
            let done = ValidationDone {
                ticket: job.ticket,
                verdict,
                elapsed: start.elapsed(),
            };
            // The core is gone only when rcm is stopping: nobody waits for the verdict then.
            let _stopping = shared.tx.send(Input::Validated(done));
        };
        tokio::spawn(tracing::Instrument::instrument(run, span));
    }

    /// Kills every idle validation host (rcm is stopping).
    pub fn shutdown(&self) {
        for idle in self
            .shared
            .lock_idle()
            .by_path
            .drain()
            .flat_map(|(_, hosts)| hosts)
        {
            idle.host.kill();
        }
    }
}

impl Shared {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one validation in a warm or fresh host; the host goes back to the idle list only when
    /// its VALIDATE returned in time.
    async fn validate(self: &Arc<Self>, job: &ValidationJob) -> Verdict {
        let host = match self.warm_host(&job.plugin_path) {
            Some(host) => host,
            None => match self.spawn().await {
                Ok(host) => host,
                Err(e) => {
                    return Verdict::Refused(format!(
                        "resource '{}': cannot start a host to validate its parameters (type \
                         '{}'): {e}",
                        job.resource, job.type_name
                    ))
                }
            },
        };
        let backstop = job.deadline * 2 + self.config.watchdog_grace + BACKSTOP_MARGIN;
        let start = Instant::now();
        let outcome = tokio::time::timeout(backstop, run_in(&host, job, self.resource_id())).await;
        match outcome {
            Ok(Ok(verdict)) => {
                self.keep_idle(&job.plugin_path, host);
                verdict
            }
            Ok(Err(failure)) => {
                host.kill();
                Verdict::Refused(failure.describe(job, start.elapsed()))
            }
            Err(_) => {
                host.kill();
                let pid = host.pid();
                Verdict::Refused(format!(
                    "resource '{}': validating its parameters (type '{}') got no answer within \
                     {} ms; validation host {pid} was killed",
                    job.resource,
                    job.type_name,
                    backstop.as_millis()
                ))
            }
        }
    }

    fn resource_id(&self) -> ResourceId {
        ResourceId(self.next_resource.fetch_add(1, Ordering::Relaxed))
    }

    async fn spawn(&self) -> Result<Host, HostError> {
        let (host, events) = Host::spawn(&self.config).await?;
        tokio::spawn(discard_output(events));
        Ok(host)
    }

    /// A kept host for `path` that is still alive; None when there is none (dead ones are
    /// dropped on the way).
    fn warm_host(&self, path: &str) -> Option<Host> {
        while let Some(entry) = self.take_idle(path) {
            if entry.host.death().is_none() {
                return Some(entry.host);
            }
            entry.host.kill();
        }
        None
    }

    /// The most recently kept host for `path` that has not idled too long (older ones are killed
    /// on the way).
    fn take_idle(&self, path: &str) -> Option<IdleHost> {
        let mut idle = self.lock_idle();
        let hosts = idle.by_path.get_mut(path)?;
        while let Some(entry) = hosts.pop() {
            if entry.since.elapsed() < IDLE_HOST_LIFETIME {
                return Some(entry);
            }
            entry.host.kill();
        }
        None
    }

    /// Keeps `host` for the next validation of `path`; a reaper retires it once it has idled too
    /// long (one reaper per file, while the file has idle hosts).
    fn keep_idle(self: &Arc<Self>, path: &str, host: Host) {
        let mut idle = self.lock_idle();
        idle.by_path
            .entry(path.to_string())
            .or_default()
            .push(IdleHost {
                host,
                since: Instant::now(),
            });
        if !idle.reaped.insert(path.to_string()) {
            return;
        }
        let shared = Arc::downgrade(self);
        let path = path.to_string();
        tokio::spawn(async move {
            // Ends once the file has no idle host left: each is kept at most IDLE_HOST_LIFETIME.
            loop {
                tokio::time::sleep(IDLE_HOST_LIFETIME).await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if shared.retire_expired(&path) {
                    return;
                }
            }
        });
    }

    /// Kills the idle hosts of `path` that have idled their whole lifetime; whether none is left
    /// (the reaper of `path` then stops).
    fn retire_expired(&self, path: &str) -> bool {
        let mut idle = self.lock_idle();
        let hosts = idle.by_path.entry(path.to_string()).or_default();
        hosts.retain(|entry| {
            let expired = entry.since.elapsed() >= IDLE_HOST_LIFETIME;
            if expired {
                entry.host.kill();
            }
            !expired
        });
        let empty = hosts.is_empty();
        if empty {
            idle.by_path.remove(path);
            idle.reaped.remove(path);
        }
        empty
    }
}

/// Why a validation could not give a verdict: the step and what happened to the host.
#[derive(Debug)]
enum Failure {
    Died { step: Op, died: HostDied },
    Protocol { step: Op, error: String },
}

impl Failure {
    fn describe(&self, job: &ValidationJob, elapsed: Duration) -> String {
        let head = format!(
            "resource '{}': validating its parameters (type '{}')",
            job.resource, job.type_name
        );
        let after = format!("after {} ms", elapsed.as_millis());
        match self {
            Failure::Died { step, died } => match &died.cause {
                DeathCause::Deadlock { .. } => format!(
                    "{head} hung: {} did not return within DeadlockTimeout {} ms ({after}); \
                     validation host {} was killed",
                    step.upper(),
                    job.deadline.as_millis(),
                    died.pid
                ),
                DeathCause::Crash {
                    signal,
                    op: Some(op),
                    ..
                } => format!(
                    "{head} crashed: {} in {} ({after}); validation host {} died",
                    signal_name(*signal),
                    op.upper(),
                    died.pid
                ),
                _ => format!("{head} failed in {}: {died} ({after})", step.upper()),
            },
            Failure::Protocol { step, error } => {
                format!("{head} failed in {}: {error} ({after})", step.upper())
            }
        }
    }
}

/// Calls the type's VALIDATE on `job`'s parameters in `host`, with nothing opened (the host checks
/// them against the type's schema first). A refusal (the schema's or the plugin's) is a verdict; a
/// host that died or broke the protocol is a failure.
async fn run_in(host: &Host, job: &ValidationJob, id: ResourceId) -> Result<Verdict, Failure> {
    let params = serde_json::to_string(&job.params).map_err(|e| Failure::Protocol {
        step: Op::Validate,
        error: e.to_string(),
    })?;
    let spec = OpenSpec::new(id, &job.resource, &job.plugin_path, &job.type_name)
        .params(params)
        .deadlock_timeout(job.deadline);
    let verdict = match host.validate(spec).await {
        Ok(done) if done.status == 0 => Verdict::Accepted,
        Ok(done) => Verdict::Refused(refusal(job, Op::Validate, &done.message)),
        Err(e) => return Err(call_failure(Op::Validate, e)),
    };
    Ok(verdict)
}

fn call_failure(step: Op, e: CallError) -> Failure {
    match e {
        CallError::HostDied(died) => Failure::Died { step, died },
        other => Failure::Protocol {
            step,
            error: other.to_string(),
        },
    }
}

/// "resource 'x': type 't' refused its parameters (at OPEN): why".
fn refusal(job: &ValidationJob, step: Op, why: &str) -> String {
    format!(
        "resource '{}': type '{}' refused its parameters (at {}): {why}",
        job.resource,
        job.type_name,
        step.upper()
    )
}

/// Reads a validation host's events to the end, keeping none of them (see the module's doc).
async fn discard_output(mut events: keelson_host::HostEvents) {
    while events.recv().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ValidationJob {
        ValidationJob {
            ticket: 1,
            resource: "web".into(),
            type_name: "demo-service".into(),
            plugin_path: "/p/demo.so".into(),
            params: BTreeMap::new(),
            deadline: Duration::from_millis(400),
        }
    }

    #[test]
    fn refusals_name_the_resource_the_type_the_step_and_the_plugin_s_reason() {
        assert_eq!(
            refusal(&job(), Op::Validate, "port 0: it must be 1..=65535"),
            "resource 'web': type 'demo-service' refused its parameters (at VALIDATE): port 0: it \
             must be 1..=65535"
        );
    }

    #[test]
    fn a_hang_or_a_crash_names_the_step_the_deadline_and_the_host() {
        let hung = Failure::Died {
            step: Op::Validate,
            died: HostDied {
                pid: 77,
                cause: DeathCause::Deadlock {
                    resource: ResourceId(1),
                    name: "web".into(),
                    op: Op::Validate,
                    elapsed: Duration::from_millis(400),
                    by_watchdog: false,
                },
            },
        };
        assert_eq!(
            hung.describe(&job(), Duration::from_millis(412)),
            "resource 'web': validating its parameters (type 'demo-service') hung: VALIDATE did \
             not return within DeadlockTimeout 400 ms (after 412 ms); validation host 77 was \
             killed"
        );
        let crashed = Failure::Died {
            step: Op::Validate,
            died: HostDied {
                pid: 78,
                cause: DeathCause::Crash {
                    resource: Some(ResourceId(1)),
                    name: Some("web".into()),
                    op: Some(Op::Validate),
                    signal: 11,
                },
            },
        };
        assert_eq!(
            crashed.describe(&job(), Duration::from_millis(5)),
            "resource 'web': validating its parameters (type 'demo-service') crashed: SIGSEGV in \
             VALIDATE (after 5 ms); validation host 78 died"
        );
    }
}
