//! What `keelson plugin test` reports: one line per step (name, entry point, result, duration, and
//! on failure the rule it broke), per resource type, and the whole run, as text or JSON. Not
//! running the steps (conformance.rs).

use keelson_types::PluginInfo;
use serde::Serialize;

/// Outcome of one step.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
    /// A rule the run was told to excuse (`--allow-alive-after-offline`): reported, not failed.
    Warn,
}

#[derive(Serialize, Debug, Clone)]
pub struct StepReport {
    pub step: &'static str,
    /// The entry point the step calls; None for the load and the closing deadline check.
    pub op: Option<&'static str>,
    pub result: Outcome,
    pub duration_ms: f64,
    pub message: String,
    /// The rule the step broke (or, for a warning, would have broken).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The deadline the call was given, e.g. "PendingTimeout 180000 ms".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// The `--expect-invalid` case the step tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
}

impl StepReport {
    pub fn new(step: &'static str, op: Option<&'static str>) -> StepReport {
        StepReport {
            step,
            op,
            result: Outcome::Pass,
            duration_ms: 0.0,
            message: String::new(),
            rule: None,
            deadline: None,
            case: None,
        }
    }

    /// This step skipped, for `why`.
    pub fn skipped(mut self, why: &str) -> StepReport {
        self.result = Outcome::Skip;
        self.duration_ms = 0.0;
        self.message = why.to_string();
        self
    }

    /// This step failed: `message` says what happened, `rule` what it broke.
    pub fn failed(mut self, message: String, rule: String) -> StepReport {
        self.result = Outcome::Fail;
        self.message = message;
        self.rule = Some(rule);
        self
    }
}

#[derive(Serialize, Debug)]
pub struct TypeReport {
    #[serde(rename = "type")]
    pub type_name: String,
    pub host_pid: u32,
    pub deadlock_timeout_ms: u64,
    pub pending_timeout_ms: u64,
    pub looks_alive_budget_ms: u64,
    pub steps: Vec<StepReport>,
}

#[derive(Serialize, Debug)]
pub struct Report {
    /// The file tested (canonical path).
    pub path: String,
    /// What the plugin offers; None when it could not be loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginInfo>,
    pub passed: bool,
    /// Loading the library in a throwaway host, within DeadlockTimeout.
    pub load: StepReport,
    pub types: Vec<TypeReport>,
}

impl Report {
    /// Passed: no step failed (warnings and steps skipped after a failure aside).
    pub fn new(
        path: String,
        plugin: Option<PluginInfo>,
        load: StepReport,
        types: Vec<TypeReport>,
    ) -> Report {
        let passed = plugin.is_some()
            && std::iter::once(&load)
                .chain(types.iter().flat_map(|t| &t.steps))
                .all(|s| s.result != Outcome::Fail);
        Report {
            path,
            plugin,
            passed,
            load,
            types,
        }
    }

    fn count(&self, outcome: Outcome) -> usize {
        std::iter::once(&self.load)
            .chain(self.types.iter().flat_map(|t| &t.steps))
            .filter(|s| s.result == outcome)
            .count()
    }

    pub fn print_summary(&self) {
        let plugin = match &self.plugin {
            Some(info) => format!("plugin {}", info.name),
            None => "plugin file".to_string(),
        };
        let warned = match self.count(Outcome::Warn) {
            0 => String::new(),
            n => format!(", {n} warned"),
        };
        println!(
            "{plugin} ({}): {} ({} passed, {} failed, {} skipped{warned})",
            self.path,
            if self.passed { "PASS" } else { "FAIL" },
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Skip),
        );
    }
}

impl TypeReport {
    pub fn print(&self) {
        println!(
            "type {} (host pid {}, DeadlockTimeout {} ms, PendingTimeout {} ms, looks_alive budget \
             {} ms)",
            self.type_name,
            self.host_pid,
            self.deadlock_timeout_ms,
            self.pending_timeout_ms,
            self.looks_alive_budget_ms
        );
        for s in &self.steps {
            s.print();
        }
    }
}

impl StepReport {
    pub fn print(&self) {
        let tag = match self.result {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
            Outcome::Warn => "WARN",
        };
        let dur = if self.result == Outcome::Skip || self.step == "deadline" {
            String::new()
        } else {
            format!("{:9.2} ms", self.duration_ms)
        };
        let rule = match (&self.rule, self.result) {
            (Some(rule), Outcome::Fail | Outcome::Warn) => format!(" [rule: {rule}]"),
            _ => String::new(),
        };
        println!(
            "  {tag}  {:<26}{dur:>12}  {}{rule}",
            self.step, self.message
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_passes_a_failure_does_not_and_no_plugin_never_passes() {
        let load = StepReport::new("load", None);
        let warn = StepReport {
            result: Outcome::Warn,
            ..StepReport::new("looks_alive_after_offline", Some("LOOKSALIVE"))
        };
        let typed = |steps: Vec<StepReport>| TypeReport {
            type_name: "t".into(),
            host_pid: 1,
            deadlock_timeout_ms: 1,
            pending_timeout_ms: 1,
            looks_alive_budget_ms: 1,
            steps,
        };
        let info = PluginInfo {
            name: "p".into(),
            path: "p".into(),
            types: Vec::new(),
        };
        let ok = Report::new(
            "p".into(),
            Some(info.clone()),
            load.clone(),
            vec![typed(vec![warn])],
        );
        assert!(ok.passed);
        let fail = StepReport::new("online", Some("ONLINE")).failed("x".into(), "y".into());
        let bad = Report::new(
            "p".into(),
            Some(info),
            load.clone(),
            vec![typed(vec![fail])],
        );
        assert!(!bad.passed);
        assert!(!Report::new("p".into(), None, load, Vec::new()).passed);
    }

    #[test]
    fn the_rule_is_in_the_json_only_when_broken() {
        let pass = serde_json::to_value(StepReport::new("open", Some("OPEN"))).unwrap();
        assert!(pass.get("rule").is_none(), "{pass}");
        let fail = StepReport::new("open", Some("OPEN")).failed("m".into(), "r".into());
        let fail = serde_json::to_value(fail).unwrap();
        assert_eq!(fail["rule"], "r");
        assert_eq!(fail["result"], "fail");
    }
}
