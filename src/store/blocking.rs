//! A bounded pool for blocking database work, so SQLite never runs on the async workers.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::StoreError;
use crate::request_meta::RequestMeta;

#[derive(Clone)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Runs `job` on a blocking thread once one of the pool's permits is free.
    pub async fn run<T, E>(
        &self,
        job: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::WorkerLost)?;
        // The job logs inside the caller's span, so its lines keep the request id, and
        // audits as part of the caller's request.
        let span = tracing::Span::current();
        let request = RequestMeta::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            RequestMeta::in_blocking(request, || span.in_scope(job))
        })
        .await
        .map_err(|_| StoreError::WorkerLost)?
    }
}
