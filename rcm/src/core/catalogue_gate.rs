//! The core's side of the plugin catalogue: park a `resource create` whose type is still being
//! probed, and release waiting opens and creates as the catalogue fills in. Not the probes
//! (probe.rs) nor the catalogue's bookkeeping (catalogue.rs).

use super::{Core, Input};
use crate::api::CoreRequest;
use crate::catalogue::Resolution;
use crate::event_at;
use crate::probe::{CatalogueInput, PARK_MARGIN};
use keelson_host::PendingOpen;
use keelson_proto::ControlRequest;
use keelson_types::HostId;

impl Core {
    /// Hands a control request back, or parks it when it is a create of a type still being probed
    /// (it is answered when the type resolves, when every probe has reported, or at its deadline).
    pub(super) fn gate_on_catalogue(&mut self, request: CoreRequest) -> Option<CoreRequest> {
        let ControlRequest::ResourceCreate { type_name, .. } = &request.0 else {
            return Some(request);
        };
        if self.catalogue.resolve(type_name) != Resolution::Pending {
            return Some(request);
        }
        let type_name = type_name.clone();
        let ticket = self.catalogue.park(type_name, request);
        let wait = self.host_config.hello_timeout + self.catalogue.probe_timeout() + PARK_MARGIN;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(Input::Catalogue(CatalogueInput::ParkExpired(ticket)));
        });
        None
    }

    /// A probe reported, or a parked create ran out of time.
    pub(super) fn on_catalogue(&mut self, input: CatalogueInput) {
        match input {
            CatalogueInput::Probed(report) => {
                for (level, line) in self.catalogue.record(report) {
                    event_at!(level, "{line}");
                }
                self.refresh_secrets();
                self.release_waiting();
            }
            CatalogueInput::ParkExpired(ticket) => {
                if let Some(request) = self.catalogue.unpark(ticket) {
                    self.answer(request);
                }
            }
        }
    }

    /// An open whose type is still being probed waits for it (released by `release_waiting`).
    pub(super) fn wait_for_catalogue(&mut self, host: HostId, open: PendingOpen) {
        tracing::info!(
            resource = %open.name,
            "Resource '{}' (type '{}') waits for the plugin catalogue: {}",
            open.name,
            open.type_name,
            self.catalogue.still_probing()
        );
        self.catalogue.wait_for_type(host, open);
    }

    /// Opens and creates whose type is no longer pending go ahead (or fail with the reason).
    fn release_waiting(&mut self) {
        for (host, open) in self.catalogue.take_resolved_opens() {
            // An open whose host or resource went away meanwhile was cancelled by what removed it.
            let wanted =
                self.pool.wants(host, &open) && self.engine.resource_by_id(open.resource).is_some();
            if wanted {
                self.start_open(host, open);
            }
        }
        for request in self.catalogue.take_resolved_parked() {
            self.answer(request);
        }
    }

    /// Answers a released create, after its validation (core/validation_gate.rs).
    fn answer(&mut self, request: CoreRequest) {
        let Some((request, reply)) = self.gate_on_validation(request) else {
            return;
        };
        let answer = self.request(request);
        let _ = reply.send(answer);
    }

    /// A probe may have made types known whose schemas declare secrets: every resource's secret
    /// values are taken again with what the catalogue knows now.
    fn refresh_secrets(&mut self) {
        for r in self.engine.resources() {
            self.remember_secrets_of(&r.name, &r.type_name, &r.params);
        }
    }
}
