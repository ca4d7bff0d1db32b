//! The status codes a plugin's entry point may return, as the host passes them on: a code the ABI
//! defines goes up unchanged, any other non-zero one becomes `KEELSON_ERROR` with a log line naming
//! it. Not what the codes mean to the policy (crates/engine) nor their names (keelson_types'
//! StatusKind, which a test here holds to the ABI's numbers).

use keelson_abi::KEELSON_ERROR;
use keelson_types::{LogLevel, Op, ResourceId, StatusKind};

/// The code to send up for `status`, returned by `op` of resource `name`; logs an unknown one.
pub fn normalise(resource: ResourceId, name: &str, op: Op, status: i32) -> i32 {
    if StatusKind::from_code(status).is_some() {
        return status;
    }
    let line = format!(
        "resource '{name}': {} returned unknown status code {status}; treated as ERROR \
         (KEELSON_ERROR)",
        op.upper()
    );
    crate::log::event(Some(resource), LogLevel::Warn, &line);
    KEELSON_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_abi::*;

    #[test]
    fn the_abi_codes_are_the_kinds_numbers_and_unknown_ones_become_error() {
        let pairs = [
            (KEELSON_OK, StatusKind::Ok),
            (KEELSON_ERROR, StatusKind::Error),
            (KEELSON_PANIC, StatusKind::Panic),
            (KEELSON_INVALID, StatusKind::Invalid),
            (KEELSON_MISCONFIGURED, StatusKind::Misconfigured),
            (KEELSON_NOT_INSTALLED, StatusKind::NotInstalled),
            (KEELSON_NOT_RUNNING, StatusKind::NotRunning),
        ];
        for (code, kind) in pairs {
            assert_eq!(StatusKind::from_code(code), Some(kind), "code {code}");
            assert_eq!(normalise(ResourceId(1), "r", Op::IsAlive, code), code);
        }
        assert_eq!(normalise(ResourceId(1), "r", Op::Online, 42), KEELSON_ERROR);
        assert_eq!(normalise(ResourceId(1), "r", Op::Online, -1), KEELSON_ERROR);
    }
}
