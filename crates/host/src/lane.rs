//! One open resource's lane: a task that performs its requests (calls, health plans, its close)
//! strictly in the order they were sent, whatever the runtime's scheduling, and reports call
//! answers to the pool. Not the ordering across an open in flight (sequence.rs) nor what the
//! answers mean (pool.rs).

use crate::error::CallError;
use crate::pool_io::PoolReport;
use crate::resource::ResourceHandle;
use keelson_types::{HealthPlan, Op};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// One request on a lane.
enum Job {
    Call {
        op: Op,
        deadline_ms: u64,
        span: tracing::Span,
    },
    Poll(Option<HealthPlan>),
    Close {
        deadline_ms: u64,
    },
}

/// The sending end of a resource's lane; dropping it ends the lane once its requests are done.
pub(crate) struct Lane {
    handle: Arc<ResourceHandle>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl Lane {
    /// Starts the lane of `handle`; call answers go to `reports`.
    pub(crate) fn start(
        handle: ResourceHandle,
        reports: mpsc::UnboundedSender<PoolReport>,
    ) -> Lane {
        let handle = Arc::new(handle);
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(handle.clone(), queue, reports));
        Lane { handle, jobs }
    }

    /// The pid of the host the resource is open in.
    pub(crate) fn host_pid(&self) -> u32 {
        self.handle.host_pid()
    }

    /// Calls `op` within `deadline_ms` after every request sent before it, inside `span`.
    pub(crate) fn call(&self, op: Op, deadline_ms: u64, span: tracing::Span) {
        self.send(Job::Call {
            op,
            deadline_ms,
            span,
        });
    }

    /// Hands the host the resource's health plan, after every request sent before it.
    pub(crate) fn set_polling(&self, plan: Option<HealthPlan>) {
        self.send(Job::Poll(plan));
    }

    /// Closes the resource within `deadline_ms` after every request sent before it; the lane ends.
    pub(crate) fn close(self, deadline_ms: u64) {
        self.send(Job::Close { deadline_ms });
    }

    fn send(&self, job: Job) {
        // The lane's task ends only once every sender is gone, so it is there to receive.
        let _ = self.jobs.send(job);
    }
}

async fn run(
    handle: Arc<ResourceHandle>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    reports: mpsc::UnboundedSender<PoolReport>,
) {
    let resource = handle.id();
    while let Some(job) = queue.recv().await {
        match job {
            Job::Call {
                op,
                deadline_ms,
                span,
            } => {
                let deadline = Duration::from_millis(deadline_ms);
                // Boxed, so an idle lane (10,000 of them on a big node) holds only its queue.
                let result =
                    Box::pin(handle.call_with_deadline(op, deadline).instrument(span)).await;
                let _ = reports.send(PoolReport::CallDone {
                    resource,
                    op,
                    result,
                });
            }
            Job::Poll(plan) => match Box::pin(handle.set_polling(plan)).await {
                // A host that died or a resource closed meanwhile is reported on its own.
                Ok(()) | Err(CallError::HostDied(_)) | Err(CallError::Closed) => {}
                Err(e) => tracing::error!(
                    component = "RCM",
                    "resource '{}': cannot hand its health plan to its host: {e}",
                    handle.name()
                ),
            },
            // Its outcome is the host's business: nobody waits for a close.
            Job::Close { deadline_ms } => {
                let _ = Box::pin(handle.close(Duration::from_millis(deadline_ms))).await;
                return;
            }
        }
    }
}
