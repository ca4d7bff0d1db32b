//! What an OCF agent's exit code means for keelson: OCF_SUCCESS is Ok, OCF_ERR_ARGS and
//! OCF_ERR_CONFIGURED are misconfigured, OCF_ERR_INSTALLED is not installed, OCF_NOT_RUNNING is
//! not running (and success for stop), the rest are errors. Every error names the agent, the
//! action and the code. Not running the agent (runner.rs).

use crate::runner::Outcome;
use keelson_plugin::Error;

/// The OCF name of an exit code.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OCF_SUCCESS",
        1 => "OCF_ERR_GENERIC",
        2 => "OCF_ERR_ARGS",
        3 => "OCF_ERR_UNIMPLEMENTED",
        4 => "OCF_ERR_PERM",
        5 => "OCF_ERR_INSTALLED",
        6 => "OCF_ERR_CONFIGURED",
        7 => "OCF_NOT_RUNNING",
        8 => "OCF_RUNNING_PROMOTED",
        9 => "OCF_FAILED_PROMOTED",
        _ => "unknown to OCF",
    }
}

/// Maps how `action` of agent `label` ended; `stop` treats OCF_NOT_RUNNING as done.
pub fn verdict(label: &str, action: &str, outcome: &Outcome) -> Result<(), Error> {
    let last = last_line(&outcome.output);
    let code = match (outcome.timed_out, outcome.code) {
        (true, _) => {
            return Err(Error::new(format!(
                "{label}: {action} did not finish within its deadline of {} ms; its process group was killed{last}",
                outcome.deadline.as_millis()
            )))
        }
        (false, None) => {
            return Err(Error::new(format!(
                "{label}: {action} was killed by a signal{last}"
            )))
        }
        (false, Some(code)) => code,
    };
    if code == 0 || (code == 7 && action == "stop") {
        return Ok(());
    }
    let message = format!(
        "{label}: {action} exited {code} ({}){last}",
        code_name(code)
    );
    Err(match code {
        2 | 6 => Error::misconfigured(message),
        5 => Error::not_installed(message),
        7 => Error::not_running(message),
        _ => Error::new(message),
    })
}

/// `: <the output's last non-empty line>`, or nothing.
fn last_line(output: &str) -> String {
    match output.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", line.chars().take(200).collect::<String>()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_plugin::ErrorKind;
    use std::time::Duration;

    fn ended(code: Option<i32>, timed_out: bool) -> Outcome {
        Outcome {
            code,
            timed_out,
            deadline: Duration::from_millis(1500),
            output: "first\nthe reason\n\n".into(),
        }
    }

    #[test]
    fn each_code_has_its_kind_and_every_error_names_agent_action_code() {
        let kind = |action: &str, code| verdict("ocf h:D", action, &ended(Some(code), false));
        assert!(kind("start", 0).is_ok());
        assert!(kind("stop", 7).is_ok());
        let cases = [
            (1, ErrorKind::Error),
            (2, ErrorKind::Misconfigured),
            (3, ErrorKind::Error),
            (4, ErrorKind::Error),
            (5, ErrorKind::NotInstalled),
            (6, ErrorKind::Misconfigured),
            (7, ErrorKind::NotRunning),
            (8, ErrorKind::Error),
            (9, ErrorKind::Error),
        ];
        for (code, expected) in cases {
            let err = kind("monitor", code).unwrap_err();
            assert_eq!(err.kind(), expected, "code {code}");
            assert_eq!(
                err.message(),
                format!(
                    "ocf h:D: monitor exited {code} ({}): the reason",
                    code_name(code)
                )
            );
        }
    }

    #[test]
    fn a_timeout_says_the_deadline_and_the_kill() {
        let err = verdict("ocf h:D", "monitor", &ended(None, true)).unwrap_err();
        assert_eq!(
            err.message(),
            "ocf h:D: monitor did not finish within its deadline of 1500 ms; its process group was killed: the reason"
        );
        assert!(verdict("ocf h:D", "stop", &ended(None, false)).is_err());
    }
}
