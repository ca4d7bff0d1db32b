//! The conformance run of one resource type, in a fresh host: validate (the given parameters must
//! pass, each `--expect-invalid` case must be refused) before anything is opened; then open,
//! online twice, the health checks, offline twice, the health checks again (they must fail now),
//! online again, terminate, close; a fresh open after close; two resources at once; and a closing
//! check that every call returned within its deadline. Each step is timed and, on failure, names
//! the rule it broke; once the host dies (a hang past a deadline, a crash) every later step is
//! skipped. Not loading the library (plugin_test.rs) nor printing (report.rs).

use super::failure::{call_failure, ms, open_failure};
use super::limits::{Limit, Limits};
use super::params::{Pair, ParamSet};
use super::report::{Outcome, StepReport, TypeReport};
use anyhow::{Context, Result};
use keelson_host::{
    CallError, Host, HostConfig, HostError, OpenSpec, ResourceDirs, ResourceHandle,
};
use keelson_proto::CallDone;
use keelson_types::{Op, ResourceId};
use std::time::{Duration, Instant};

/// What to run one type with.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub path: &'a str,
    pub type_name: &'a str,
    /// `--param`: what validate must accept and every open gets.
    pub params: &'a ParamSet,
    /// `--expect-invalid`: each, set over `params`, must be refused by validate.
    pub expect_invalid: &'a [Pair],
    /// `--second-param`: the second of the two resources opened at once gets these over `params`.
    pub second: &'a [Pair],
    pub limits: Limits,
    /// `--allow-alive-after-offline`: a health check that passes after offline is a warning.
    pub allow_alive_after_offline: bool,
}

/// What a call must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Success,
    /// A health check after offline: it must fail.
    Refusal,
}

/// The node name the resources are told.
const CONFORMANCE_NODE: &str = "plugin-test";

/// First id of the validate calls, clear of the resources' own ids.
const VALIDATE_IDS: u64 = 1000;

/// One type's run: its host, the steps so far, and why the rest are skipped (if they are).
pub struct Conformance<'a> {
    plan: Plan<'a>,
    host: Host,
    steps: Vec<StepReport>,
    /// The time each call spent inside the plugin and the deadline it had.
    timed: Vec<(Op, Duration, Limit)>,
    stopped: Option<&'static str>,
    validations: u64,
    /// Each resource's state directory, under a temporary root removed after the run.
    dirs: ResourceDirs,
    _state_root: tempfile::TempDir,
}

impl<'a> Conformance<'a> {
    /// Runs every step for `plan.type_name` in a fresh host.
    pub async fn run(config: &HostConfig, plan: Plan<'a>) -> Result<TypeReport> {
        let (host, _events) = Host::spawn(config)
            .await
            .context("cannot start keelson-rhs")?;
        let state_root = tempfile::Builder::new()
            .prefix("keelson-plugin-test-")
            .tempdir()
            .context("cannot make a temporary directory for the resources' state")?;
        let mut run = Conformance {
            plan,
            host,
            steps: Vec::new(),
            timed: Vec::new(),
            stopped: None,
            validations: 0,
            dirs: ResourceDirs::new(state_root.path(), CONFORMANCE_NODE),
            _state_root: state_root,
        };
        run.validation().await;
        run.lifecycle().await;
        run.reopen().await;
        run.two_at_once().await;
        run.deadline_step();
        run.host.shutdown().await;
        Ok(run.report())
    }

    fn report(self) -> TypeReport {
        let limits = self.plan.limits;
        TypeReport {
            type_name: self.plan.type_name.to_string(),
            host_pid: self.host.pid(),
            deadlock_timeout_ms: limits.deadline(Op::Open).ms(),
            pending_timeout_ms: limits.deadline(Op::Online).ms(),
            looks_alive_budget_ms: limits.budget().ms(),
            steps: self.steps,
        }
    }

    /// Validate, before anything is opened: the given parameters pass, each case is refused.
    async fn validation(&mut self) {
        let params = self.plan.params.clone();
        self.validate("validate", &params, None).await;
        for case in self.plan.expect_invalid {
            let with_case = params.with(std::slice::from_ref(case));
            self.validate("expect_invalid", &with_case, Some(case))
                .await;
        }
    }

    /// Open, online twice, healthy, offline twice, unhealthy, online again, terminate, close.
    async fn lifecycle(&mut self) {
        let params = self.plan.params.clone();
        let rule = "open must succeed with the parameters validate accepted";
        let resource = self.open("open", 1, "", &params, rule).await;
        if resource.is_none() && self.stopped.is_none() {
            self.stopped = Some("open failed");
        }
        let r = resource.as_ref();
        let ok = Expect::Success;
        self.call(
            "online",
            r,
            Op::Online,
            ok,
            "online must bring the resource online",
        )
        .await;
        let idempotent = "online must be idempotent: online of an online resource succeeds";
        self.call("online_idempotent", r, Op::Online, ok, idempotent)
            .await;
        let healthy = "health checks must pass while online, after a second online too";
        self.call("looks_alive", r, Op::LooksAlive, ok, healthy)
            .await;
        self.call("is_alive", r, Op::IsAlive, ok, healthy).await;
        self.call("offline", r, Op::Offline, ok, "offline must succeed")
            .await;
        let idempotent = "offline must be idempotent: offline of an offline resource succeeds";
        self.call("offline_idempotent", r, Op::Offline, ok, idempotent)
            .await;
        let down = "health checks must fail after offline";
        let refuse = Expect::Refusal;
        self.call("looks_alive_offline", r, Op::LooksAlive, refuse, down)
            .await;
        self.call("is_alive_offline", r, Op::IsAlive, refuse, down)
            .await;
        let again = "online must work again after offline";
        self.call("online_again", r, Op::Online, ok, again).await;
        self.call("terminate", r, Op::Terminate, ok, "terminate must succeed")
            .await;
        self.call("close", r, Op::Close, ok, "close must succeed")
            .await;
    }

    /// A fresh open after close works, and online and offline work on it.
    async fn reopen(&mut self) {
        let params = self.plan.params.clone();
        let rule = "a fresh open after close must work";
        let resource = self.open("reopen", 2, "-reopen", &params, rule).await;
        let r = resource.as_ref();
        let ok = Expect::Success;
        self.call("reopen_online", r, Op::Online, ok, rule).await;
        self.call("reopen_offline", r, Op::Offline, ok, rule).await;
        self.call("reopen_close", r, Op::Close, ok, rule).await;
    }

    /// Two resources of the type at once in one host: both open, online, healthy, offline, closed.
    async fn two_at_once(&mut self) {
        let first = self.plan.params.clone();
        let second = first.with(self.plan.second);
        let rule = "two resources of the type must work at once in one host (--second-param \
                    gives the second its own values)";
        let a = self.open("pair_open_a", 3, "-a", &first, rule).await;
        let b = self.open("pair_open_b", 4, "-b", &second, rule).await;
        let (a, b) = (a.as_ref(), b.as_ref());
        let ok = Expect::Success;
        let steps = [
            ("pair_online_a", a, Op::Online),
            ("pair_online_b", b, Op::Online),
            ("pair_looks_alive_a", a, Op::LooksAlive),
            ("pair_looks_alive_b", b, Op::LooksAlive),
            ("pair_is_alive_a", a, Op::IsAlive),
            ("pair_is_alive_b", b, Op::IsAlive),
            ("pair_offline_a", a, Op::Offline),
            ("pair_offline_b", b, Op::Offline),
            ("pair_close_a", a, Op::Close),
            ("pair_close_b", b, Op::Close),
        ];
        for (step, resource, op) in steps {
            self.call(step, resource, op, ok, rule).await;
        }
    }

    /// Runs VALIDATE with `params` and nothing open; `case` set: it must refuse.
    async fn validate(&mut self, step: &'static str, params: &ParamSet, case: Option<&Pair>) {
        let limit = self.plan.limits.deadline(Op::Validate);
        let mut report = StepReport::new(step, Some(Op::Validate.upper()));
        report.deadline = Some(limit.to_string());
        report.case = case.map(Pair::to_string);
        if let Some(why) = self.stopped {
            return self.steps.push(report.skipped(why));
        }
        self.validations += 1;
        let spec = OpenSpec::new(
            ResourceId(VALIDATE_IDS + self.validations),
            &format!("conformance-{}-validate", self.plan.type_name),
            self.plan.path,
            self.plan.type_name,
        )
        .params(params.to_json())
        .deadlock_timeout(limit.duration);
        let start = Instant::now();
        let result = self.host.validate(spec).await;
        report.duration_ms = ms(start.elapsed());
        let done = match result {
            Ok(done) => done,
            Err(e) => return self.lost(report, Op::Validate, limit, &e),
        };
        self.timed.push((Op::Validate, inside(&done), limit));
        let report = match case {
            None if done.status == 0 => StepReport {
                message: done.message,
                ..report
            },
            None => report.failed(
                status_line(&done),
                "validate must accept the given parameters (--param)".into(),
            ),
            Some(case) if done.status != 0 => StepReport {
                message: format!("refused {case}: {}", status_line(&done)),
                ..report
            },
            Some(case) => {
                let why = match done.message.as_str() {
                    "" => String::new(),
                    m => format!(" ({m})"),
                };
                report.failed(
                    format!("validate accepted {case}{why}"),
                    format!("validate must refuse {case} (--expect-invalid)"),
                )
            }
        };
        self.steps.push(report);
    }

    /// Opens resource `id` with `params`; None (the step failed or was skipped) if not open.
    async fn open(
        &mut self,
        step: &'static str,
        id: u64,
        suffix: &str,
        params: &ParamSet,
        rule: &str,
    ) -> Option<ResourceHandle> {
        let limit = self.plan.limits.deadline(Op::Open);
        let mut report = StepReport::new(step, Some(Op::Open.upper()));
        report.deadline = Some(limit.to_string());
        if let Some(why) = self.stopped {
            self.steps.push(report.skipped(why));
            return None;
        }
        let state_dir = match self.dirs.ensure(ResourceId(id)) {
            Ok(dir) => dir,
            Err(message) => {
                self.steps
                    .push(report.failed(message, "the resource needs a state directory".into()));
                return None;
            }
        };
        let spec = OpenSpec::new(
            ResourceId(id),
            &format!("conformance-{}{suffix}", self.plan.type_name),
            self.plan.path,
            self.plan.type_name,
        )
        .params(params.to_json())
        .deadlock_timeout(limit.duration)
        .state_dir(state_dir)
        .node_name(CONFORMANCE_NODE);
        let start = Instant::now();
        let opened = self.host.open(spec).await;
        let elapsed = start.elapsed();
        report.duration_ms = ms(elapsed);
        match opened {
            Ok(resource) => {
                self.timed.push((Op::Open, elapsed, limit));
                self.steps.push(report);
                Some(resource)
            }
            Err(e) => {
                let message = open_failure(&e, &self.plan.limits);
                let rule = match &e {
                    HostError::Died(_) => {
                        self.stopped = Some("host died");
                        death_rule(Op::Open, limit)
                    }
                    _ => rule.to_string(),
                };
                self.steps.push(report.failed(message, rule));
                None
            }
        }
    }

    /// Calls `op` on `resource` (None: not open, skipped) within its deadline and judges it.
    async fn call(
        &mut self,
        step: &'static str,
        resource: Option<&ResourceHandle>,
        op: Op,
        expect: Expect,
        rule: &str,
    ) {
        let limit = self.plan.limits.deadline(op);
        let mut report = StepReport::new(step, Some(op.upper()));
        report.deadline = Some(limit.to_string());
        if let Some(why) = self.stopped {
            return self.steps.push(report.skipped(why));
        }
        let Some(resource) = resource else {
            return self.steps.push(report.skipped("not open"));
        };
        let start = Instant::now();
        let result = resource.call_with_deadline(op, limit.duration).await;
        report.duration_ms = ms(start.elapsed());
        match result {
            Ok(done) => {
                self.timed.push((op, inside(&done), limit));
                let judged = self.judge(report, op, done, expect, rule);
                self.steps.push(judged);
            }
            Err(e) => self.lost(report, op, limit, &e),
        }
    }

    /// The verdict on a call that returned: the budget of LOOKSALIVE first, then its status.
    fn judge(
        &self,
        report: StepReport,
        op: Op,
        done: CallDone,
        expect: Expect,
        rule: &str,
    ) -> StepReport {
        let budget = self.plan.limits.budget();
        if op == Op::LooksAlive && inside(&done) > budget.duration {
            return report.failed(
                format!(
                    "LOOKSALIVE took {:.2} ms inside the plugin, over {budget}",
                    ms(inside(&done))
                ),
                format!("looks_alive must be cheap: within {budget} (--looks-alive-budget)"),
            );
        }
        match (expect, done.status) {
            (Expect::Success, 0) => StepReport {
                message: done.message,
                ..report
            },
            (Expect::Success, _) => report.failed(status_line(&done), rule.to_string()),
            (Expect::Refusal, 0) if self.plan.allow_alive_after_offline => StepReport {
                result: Outcome::Warn,
                message: format!(
                    "{} passed after offline (excused by --allow-alive-after-offline)",
                    op.upper()
                ),
                rule: Some(rule.to_string()),
                ..report
            },
            (Expect::Refusal, 0) => report.failed(
                format!("{} passed after offline", op.upper()),
                rule.to_string(),
            ),
            (Expect::Refusal, _) => StepReport {
                message: format!("failed, as it must: {}", status_line(&done)),
                ..report
            },
        }
    }

    /// A call that got no answer: the host died (every later step is skipped) or the link broke.
    fn lost(&mut self, report: StepReport, op: Op, limit: Limit, e: &CallError) {
        let message = call_failure(e, &self.plan.limits);
        let rule = match e {
            CallError::HostDied(_) => {
                self.stopped = Some("host died");
                death_rule(op, limit)
            }
            _ => format!("{} must answer", op.upper()),
        };
        self.steps.push(report.failed(message, rule));
    }

    /// The closing step: every call returned within its deadline (timed inside the plugin).
    fn deadline_step(&mut self) {
        let report = StepReport::new("deadline", None);
        if let Some(why) = self.stopped {
            return self.steps.push(report.skipped(why));
        }
        let late = self
            .timed
            .iter()
            .find(|(_, took, limit)| took >= &limit.duration);
        let slowest = self
            .timed
            .iter()
            .max_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        let report = match (late, slowest) {
            (Some((op, took, limit)), _) => report.failed(
                format!("{} took {:.2} ms, over {limit}", op.upper(), ms(*took)),
                format!("{} must return within {limit}", op.upper()),
            ),
            (None, Some((op, took, limit))) => StepReport {
                message: format!(
                    "every call returned within its deadline (closest: {} {:.2} ms of {limit})",
                    op.upper(),
                    ms(*took)
                ),
                ..report
            },
            (None, None) => report.skipped("no calls were made"),
        };
        self.steps.push(report);
    }
}

/// The rule a call broke when its host died under it.
fn death_rule(op: Op, limit: Limit) -> String {
    format!(
        "{} must return within {limit} and never take the host down",
        op.upper()
    )
}

/// How much of its deadline a call used.
fn ratio((_, took, limit): &(Op, Duration, Limit)) -> f64 {
    took.as_secs_f64() / limit.duration.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// The time the call spent inside the plugin, as the host measured it.
fn inside(done: &CallDone) -> Duration {
    Duration::from_nanos(done.elapsed_ns)
}

fn status_line(done: &CallDone) -> String {
    format!("status {}: {}", done.status, done.message)
}
