//! Running a resource type's `validate` entry point for `resource create` and `resource set --param`
//! in throwaway keelson-rhs processes, off the core's thread, each with a deadline: open the
//! candidate resource, VALIDATE, close, and report the verdict to the core as an `Input`. A few
//! validation hosts per plugin file are kept warm for a short while, each used by one validation at
//! a time (a burst of creates does not start a process each); a host whose validation hung, crashed
//! or ran past the deadline is killed and never reused. Plugin code never runs in rcm. What plugin
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
/// Extra time past the three bounded calls (open, validate, close) before rcm gives up on a host
/// that says nothing at all (its own watchdog normally ends it long before).
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
    idle: Mutex<HashMap<String, Vec<IdleHost>>>,
    next_resource: AtomicU64,
    tx: mpsc::UnboundedSender<Input>,
}

struct IdleHost {
    host: Host,
    since: Instant,
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
                idle: Mutex::new(HashMap::new()),
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
        for idle in self.shared.lock_idle().drain().flat_map(|(_, hosts)| hosts) {
            idle.host.kill();
        }
    }
}

impl Shared {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<IdleHost>>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one validation in a warm or fresh host; the host goes back to the idle list only when
    /// everything in it returned in time.
    async fn validate(self: &Arc<Self>, job: &ValidationJob) -> Verdict {
        let host = match self.take_idle(&job.plugin_path) {
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
        let backstop = job.deadline * 3 + self.config.watchdog_grace + BACKSTOP_MARGIN;
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

    /// A live idle host for `path`, if one is kept (expired ones are shut down on the way).
    fn take_idle(&self, path: &str) -> Option<Host> {
        let mut idle = self.lock_idle();
        let hosts = idle.get_mut(path)?;
        while let Some(entry) = hosts.pop() {
            if entry.since.elapsed() < IDLE_HOST_LIFETIME && entry.host.death().is_none() {
                return Some(entry.host);
            }
            entry.host.kill();
        }
        None
    }

    /// Keeps `host` for the next validation of `path`, and retires it once it has idled too long.
    fn keep_idle(self: &Arc<Self>, path: &str, host: Host) {
        let pid = host.pid();
        self.lock_idle()
            .entry(path.to_string())
            .or_default()
            .push(IdleHost {
                host,
                since: Instant::now(),
            });
        let shared = Arc::downgrade(self);
        let path = path.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(IDLE_HOST_LIFETIME).await;
            if let Some(shared) = shared.upgrade() {
                shared.retire_expired(&path, pid);
            }
        });
    }

    /// Kills the host `pid` of `path` if it is still idle and has been for its whole lifetime.
    fn retire_expired(&self, path: &str, pid: u32) {
        let mut idle = self.lock_idle();
        let Some(hosts) = idle.get_mut(path) else {
            return;
        };
        hosts.retain(|entry| {
            let expired = entry.host.pid() == pid && entry.since.elapsed() >= IDLE_HOST_LIFETIME;
            if expired {
                entry.host.kill();
            }
            !expired
        });
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

/// Open, VALIDATE and close `job`'s candidate resource in `host`. A plugin's refusal (at open or
/// at validate) is a verdict; a host that died or broke the protocol is a failure.
async fn run_in(host: &Host, job: &ValidationJob, id: ResourceId) -> Result<Verdict, Failure> {
    let params = serde_json::to_string(&job.params).map_err(|e| Failure::Protocol {
        step: Op::Open,
        error: e.to_string(),
    })?;
    let spec = OpenSpec::new(id, &job.resource, &job.plugin_path, &job.type_name)
        .params(params)
        .deadlock_timeout(job.deadline);
    let resource = match host.open(spec).await {
        Ok(resource) => resource,
        Err(HostError::Plugin(message)) => {
            return Ok(Verdict::Refused(open_refusal(job, &message)))
        }
        Err(HostError::Died(died)) => {
            return Err(Failure::Died {
                step: Op::Open,
                died,
            })
        }
        Err(e) => {
            return Err(Failure::Protocol {
                step: Op::Open,
                error: e.to_string(),
            })
        }
    };
    let verdict = match resource.call(Op::Validate).await {
        Ok(done) if done.status == 0 => Verdict::Accepted,
        Ok(done) => Verdict::Refused(format!(
            "resource '{}': type '{}' refused its parameters (VALIDATE, status {}): {}",
            job.resource, job.type_name, done.status, done.message
        )),
        Err(e) => return Err(call_failure(Op::Validate, e)),
    };
    match resource.close(job.deadline).await {
        Ok(_) => Ok(verdict),
        Err(e) => Err(call_failure(Op::Close, e)),
    }
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

/// The plugin refused the parameters in its open: "resource 'x': open failed (status N): why".
fn open_refusal(job: &ValidationJob, message: &str) -> String {
    let prefix = format!("resource '{}': ", job.resource);
    let rest = message.strip_prefix(&prefix).unwrap_or(message);
    format!(
        "resource '{}': type '{}' refused its parameters ({rest})",
        job.resource, job.type_name
    )
}

/// Reads a validation host's events to the end, keeping none of them (see the module's doc).
async fn discard_output(mut events: keelson_host::HostEvents) {
    while events.recv().await.is_some() {}
}
