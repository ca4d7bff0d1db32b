//! The core's side of validation before commit: a `resource create` or a `resource set --param`
//! is first checked against the type's declared schema (here, pure and at once, on the whole
//! parameter set the resource would have), then, for a type with a `validate` entry point, held
//! while the shell runs that entry point in a throwaway host (validation.rs) and answered when the
//! verdict comes back as an input. A refusal is one line naming the resource and the reason, with
//! secret values blanked, and nothing is proposed, written or changed. Requests the normal path
//! refuses anyway (a bad name, an unknown group or resource) go straight to it. Not running plugin
//! code (validation.rs) nor the create or set themselves (requests.rs).

use super::Core;
use crate::api::CoreRequest;
use crate::secrets::redact_values;
use crate::validation::{ValidationDone, ValidationJob, Verdict};
use keelson_proto::{Assignments, ControlReply, ControlRequest};
use keelson_types::{ResourceProperties, TypeSchema};
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest one validation call may take, whatever the resource's DeadlockTimeout: the client
/// waits for the answer (three bounded calls and the watchdog's grace stay under its 60 s).
pub const MAX_VALIDATION_DEADLINE: Duration = Duration::from_secs(15);
/// How many times a validated request is validated again because the resource changed meanwhile.
const MAX_ATTEMPTS: u32 = 3;

/// Requests held while their parameters are validated, by ticket.
#[derive(Default)]
pub(super) struct Validating {
    held: BTreeMap<u64, Held>,
    next_ticket: u64,
}

struct Held {
    request: CoreRequest,
    candidate: Candidate,
    attempts: u32,
}

/// What a create or a set would leave the resource with, and how to validate it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Candidate {
    pub resource: String,
    pub type_name: String,
    pub plugin_path: String,
    /// The whole parameter set (a set's merged old and new), as the resource would store it.
    pub params: BTreeMap<String, String>,
    pub schema: TypeSchema,
    pub has_validate: bool,
    /// The effective DeadlockTimeout of the resource, capped at MAX_VALIDATION_DEADLINE.
    pub deadline: Duration,
}

impl Candidate {
    /// The schema's refusal, naming the resource.
    pub fn check_schema(&self) -> Result<(), String> {
        self.schema.check(&self.params).map_err(|e| {
            format!(
                "resource '{}': {e} (type '{}'); nothing was changed",
                self.resource, self.type_name
            )
        })
    }

    /// The values of its secret parameters (declared so, or named like one).
    pub fn secret_values(&self) -> Vec<String> {
        self.params
            .iter()
            .filter(|(k, _)| self.schema.is_secret(k))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Core {
    /// Hands a request back to be answered now, or answers it (a schema refusal) or holds it (its
    /// type's `validate` runs first) and returns None.
    pub(super) fn gate_on_validation(&mut self, request: CoreRequest) -> Option<CoreRequest> {
        let Some(candidate) = self.candidate(&request.0) else {
            return Some(request);
        };
        if let Err(message) = candidate.check_schema() {
            self.refuse_held(request, &candidate, message);
            return None;
        }
        if !candidate.has_validate {
            return Some(request);
        }
        self.validating.next_ticket += 1;
        let ticket = self.validating.next_ticket;
        self.start_validation(ticket, &candidate);
        self.validating.held.insert(
            ticket,
            Held {
                request,
                candidate,
                attempts: 1,
            },
        );
        None
    }

    /// A verdict came back: refuse, answer, or (the resource changed meanwhile) validate again.
    pub(super) fn on_validated(&mut self, done: ValidationDone) {
        let Some(mut held) = self.validating.held.remove(&done.ticket) else {
            return;
        };
        tracing::debug!(
            component = "RCM",
            "validated the parameters of resource '{}' in {} ms",
            held.candidate.resource,
            done.elapsed.as_millis()
        );
        if let Verdict::Refused(message) = done.verdict {
            let message = format!("{message}; nothing was changed");
            return self.refuse_held(held.request, &held.candidate, message);
        }
        let now = self.candidate(&held.request.0);
        if now.as_ref() == Some(&held.candidate) || now.is_none() {
            // Unchanged, or now refused by the normal path anyway: answer it.
            let (request, reply) = held.request;
            let answer = self.request(request);
            let _gone = reply.send(answer);
            return;
        }
        let now = now.expect("checked above");
        if held.attempts >= MAX_ATTEMPTS {
            let message = format!(
                "resource '{}' changed {MAX_ATTEMPTS} times while its parameters were validated; \
                 nothing was changed, try again",
                now.resource
            );
            return self.refuse_held(held.request, &now, message);
        }
        if let Err(message) = now.check_schema() {
            return self.refuse_held(held.request, &now, message);
        }
        held.attempts += 1;
        held.candidate = now;
        self.start_validation(done.ticket, &held.candidate);
        self.validating.held.insert(done.ticket, held);
    }

    fn start_validation(&self, ticket: u64, candidate: &Candidate) {
        self.validator.start(ValidationJob {
            ticket,
            resource: candidate.resource.clone(),
            type_name: candidate.type_name.clone(),
            plugin_path: candidate.plugin_path.clone(),
            params: candidate.schema.with_defaults(&candidate.params),
            deadline: candidate.deadline,
        });
    }

    /// Answers a held request with a refusal (secret values blanked) and logs it.
    fn refuse_held(&self, (_, reply): CoreRequest, candidate: &Candidate, message: String) {
        let message = redact_values(&message, &candidate.secret_values()).into_owned();
        tracing::warn!(component = "RCM", "refused: {message}");
        let _gone = reply.send(ControlReply::Error { message });
    }

    /// What `request` would leave its resource with, when it is a create or a parameter change the
    /// normal path would not refuse for other reasons; None otherwise.
    fn candidate(&self, request: &ControlRequest) -> Option<Candidate> {
        match request {
            ControlRequest::ResourceCreate {
                name,
                type_name,
                group,
                params,
                properties,
            } => self.create_candidate(name, type_name, group, params, properties),
            ControlRequest::ResourceSet {
                name,
                properties,
                params,
                unset_params,
            } if !params.is_empty() || !unset_params.is_empty() => {
                self.set_candidate(name, properties, params, unset_params)
            }
            _ => None,
        }
    }

    fn create_candidate(
        &self,
        name: &str,
        type_name: &str,
        group: &str,
        params: &Assignments,
        properties: &Assignments,
    ) -> Option<Candidate> {
        keelson_types::check_name("resource", name).ok()?;
        params
            .iter()
            .try_for_each(|(k, _)| keelson_types::check_param_key(k))
            .ok()?;
        if self.engine.resource(name).is_some() || self.engine.group(group).is_none() {
            return None;
        }
        let props = with_assignments(self.catalogue.properties_for(type_name), properties)?;
        self.candidate_of(name, type_name, params.iter().cloned().collect(), &props)
    }

    fn set_candidate(
        &self,
        name: &str,
        properties: &Assignments,
        params: &Assignments,
        unset_params: &[String],
    ) -> Option<Candidate> {
        params
            .iter()
            .map(|(k, _)| k)
            .chain(unset_params)
            .try_for_each(|k| keelson_types::check_param_key(k))
            .ok()?;
        let r = self.engine.resource(name)?;
        let merged = merged_params(&r.params, params, unset_params)?;
        let props = with_assignments(r.properties.clone(), properties)?;
        self.candidate_of(name, &r.type_name, merged, &props)
    }

    fn candidate_of(
        &self,
        name: &str,
        type_name: &str,
        params: BTreeMap<String, String>,
        props: &ResourceProperties,
    ) -> Option<Candidate> {
        let (info, path) = self.catalogue.type_info(type_name)?;
        Some(Candidate {
            resource: name.to_string(),
            type_name: type_name.to_string(),
            plugin_path: path.to_string(),
            params,
            schema: info.schema.clone(),
            has_validate: info.has_validate,
            deadline: Duration::from_millis(props.deadlock_timeout_ms).min(MAX_VALIDATION_DEADLINE),
        })
    }
}

/// `props` with `assignments` applied, or None when one is refused (the normal path says why).
fn with_assignments(
    mut props: ResourceProperties,
    assignments: &Assignments,
) -> Option<ResourceProperties> {
    for (name, value) in assignments {
        props.set(name, value).ok()?;
    }
    Some(props)
}

/// The parameters a `resource set` would leave, as the engine merges them (new values, then
/// removals); None when the engine would refuse the change (a key given twice, an unset key that
/// is not there).
pub(super) fn merged_params(
    old: &BTreeMap<String, String>,
    params: &[(String, String)],
    unset: &[String],
) -> Option<BTreeMap<String, String>> {
    let mut out = old.clone();
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in params {
        if !seen.insert(key.as_str()) {
            return None;
        }
        out.insert(key.clone(), value.clone());
    }
    for key in unset {
        if !seen.insert(key.as_str()) {
            return None;
        }
        out.remove(key)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_types::{ParamKind, ParamSpec, TypeDefaults};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn web_schema() -> TypeSchema {
        let spec = |name: &str, kind, required, secret| ParamSpec {
            name: name.into(),
            kind,
            required,
            default: None,
            secret,
            description: String::new(),
        };
        TypeSchema {
            declared: true,
            params: vec![
                spec(
                    "port",
                    ParamKind::Integer {
                        min: Some(1),
                        max: Some(65535),
                    },
                    true,
                    false,
                ),
                spec(
                    "key",
                    ParamKind::Integer {
                        min: None,
                        max: None,
                    },
                    false,
                    true,
                ),
            ],
            defaults: TypeDefaults::default(),
        }
    }

    fn candidate(params: &[(&str, &str)]) -> Candidate {
        Candidate {
            resource: "web".into(),
            type_name: "web".into(),
            plugin_path: "/p/web.so".into(),
            params: pairs(params).into_iter().collect(),
            schema: web_schema(),
            has_validate: true,
            deadline: Duration::from_millis(500),
        }
    }

    #[test]
    fn a_set_is_checked_on_the_merged_parameters_as_the_engine_merges_them() {
        let old: BTreeMap<String, String> = pairs(&[("port", "80"), ("mode", "x")])
            .into_iter()
            .collect();
        let merged = merged_params(&old, &pairs(&[("port", "abc")]), &["mode".into()]).unwrap();
        assert_eq!(merged, pairs(&[("port", "abc")]).into_iter().collect());
        assert_eq!(
            merged_params(&old, &pairs(&[("a", "1"), ("a", "2")]), &[]),
            None
        );
        assert_eq!(merged_params(&old, &[], &["gone".into()]), None);
        let c = Candidate {
            params: merged,
            ..candidate(&[])
        };
        assert_eq!(
            c.check_schema().unwrap_err(),
            "resource 'web': parameter 'port'=\"abc\": expected an integer (type 'web'); nothing \
             was changed"
        );
    }

    #[test]
    fn schema_refusals_name_the_resource_and_the_parameter_and_never_a_secret() {
        let cases = [
            (
                vec![("port", "0")],
                "parameter 'port'=\"0\": expected an integer in 1..=65535",
            ),
            (vec![], "missing required parameter 'port'"),
            (
                vec![("port", "1"), ("colour", "red")],
                "unknown parameter 'colour' (known: port, key)",
            ),
            (
                vec![("port", "1"), ("key", "hunter22")],
                "parameter 'key'=<secret>: expected an integer",
            ),
        ];
        for (params, want) in cases {
            let err = candidate(&params).check_schema().unwrap_err();
            assert_eq!(
                err,
                format!("resource 'web': {want} (type 'web'); nothing was changed")
            );
            assert!(!err.contains("hunter22"));
        }
        assert!(candidate(&[("port", "8080")]).check_schema().is_ok());
        assert_eq!(
            candidate(&[("port", "1"), ("key", "hunter22"), ("password", "pw12")]).secret_values(),
            ["hunter22", "pw12"],
            "declared secret, and named like one"
        );
    }

    #[test]
    fn a_type_that_declares_nothing_accepts_anything_here() {
        let c = Candidate {
            schema: TypeSchema::default(),
            ..candidate(&[("colour", "red")])
        };
        assert!(c.check_schema().is_ok());
    }
}
