//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::ApiError;
use crate::store::{BlockingPool, Store};

/// The process is up and answering.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The control database opens and completes a write/read round trip.
pub async fn readyz(
    store: web::Data<Store>,
    pool: web::Data<BlockingPool>,
) -> Result<HttpResponse, ApiError> {
    let store = store.into_inner();
    match pool.run(move || store.check_ready()).await {
        Ok(true) => Ok(HttpResponse::Ok().json(json!({ "status": "ready" }))),
        Ok(false) => Err(ApiError::NotReady),
        Err(e) => {
            tracing::error!(error = %crate::telemetry::error_chain(&e), "readiness check failed");
            Err(ApiError::NotReady)
        }
    }
}
