//! What the benchmarks share: the real app on a temporary data dir with its owner signed
//! up, and the HTTP server on a loopback port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use strongbox::auth::{Device, UserId};
use strongbox::config::Config;
use strongbox::http::{self, AppState};
use strongbox::workspace::records::{RecordLimits, RecordRules};
use zeroize::Zeroizing;

/// A config on `dir` with rate limits out of the way of a load test.
pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    for limit in [
        &mut config.rate_limits.general,
        &mut config.rate_limits.auth,
    ] {
        limit.per_minute = 1_000_000;
        limit.burst = 1_000_000;
    }
    config
}

/// The app's state on a fresh data dir, and its owner.
pub fn app(config: &Config, runtime: &tokio::runtime::Runtime) -> (AppState, UserId) {
    strongbox::app::init(config).expect("init");
    let store = Arc::new(strongbox::app::open(config).expect("open").store);
    let clock: strongbox::clock::SharedClock = Arc::new(strongbox::clock::SystemClock);
    let state = AppState::new(Arc::new(config.clone()), store, clock).expect("state");
    let user = runtime.block_on(async {
        let link = state
            .auth
            .first_run_setup_link()
            .await
            .expect("link")
            .expect("no owner");
        let token = link.split("token=").nth(1).expect("token in link");
        let session = state
            .auth
            .complete_setup(
                token.to_string(),
                "bench@example.com".into(),
                Zeroizing::new("a long benchmark passphrase".into()),
                Device::new("127.0.0.1", "bench"),
            )
            .await
            .expect("owner");
        session.user.id
    });
    (state, user)
}

/// Serves `state` on a loopback port in a thread of its own; returns the base URL.
pub fn serve(state: AppState) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            http::server(listener, state)
                .expect("server")
                .await
                .expect("run");
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    url
}

/// Record limits roomy enough for the benchmarks' records.
pub fn record_rules() -> RecordRules {
    RecordRules::new(
        RecordLimits {
            max_record_bytes: 64 * 1024,
            max_fields: 200,
        },
        "[a-z][a-z0-9_]{0,63}",
    )
    .expect("rules")
}
