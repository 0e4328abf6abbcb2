//! Sign-in: what one password sign-in costs, and how many requests a second the server
//! answers while a client floods the form.
//! - cost: password sign-ins one after another, each a whole `POST /sign-in` over HTTP;
//!   floor: the Argon2id verification alone, in-process, with the product's parameters.
//! - flood: `wrk` posting wrong passwords from 16 connections at a server with the default
//!   rate limits; the limiter refuses (429) all but its allowance before any hashing, so
//!   the figure is what the refusals cost, next to the sign-ins it let through.
//!
//! Run by `scripts/bench.sh`, which records the output in BENCHMARKS.md.

mod setup;

use std::sync::Arc;
use std::time::{Duration, Instant};

use strongbox::config::Config;
use strongbox::crypto::password::{hash_password, verify_password};
use strongbox::http::AppState;

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "a long benchmark passphrase";
const SIGN_INS: usize = 20;
const CONNECTIONS: u32 = 16;

fn main() {
    let seconds = match setup::quick() {
        true => 3,
        false => 10,
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let roomy = setup::config(tmp.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (state, _) = setup::app(&roomy, &runtime);
    // As if the owner had followed the link in their verification email.
    state
        .store
        .control()
        .write(|tx| {
            tx.execute("UPDATE users SET email_verified_at = 1", [])
                .map_err(strongbox::store::StoreError::from)
        })
        .expect("verify the owner's address");
    let defaults = Config {
        rate_limits: Config::default().rate_limits,
        ..roomy.clone()
    };
    let limited = AppState::new(
        Arc::new(defaults.clone()),
        Arc::clone(&state.store),
        Arc::new(strongbox::clock::SystemClock),
    )
    .expect("state");
    let origin = roomy.public_url.origin().ascii_serialization();
    let roomy_url = setup::serve(state);
    let limited_url = setup::serve(limited);

    let stored = hash_password(PASSWORD);
    let floor = mean(|| assert!(verify_password(PASSWORD, &stored)));
    let form = SignInForm::load(&roomy_url, &origin);
    let full = mean(|| assert_eq!(form.post(PASSWORD), 303, "signed in"));

    let form = SignInForm::load(&limited_url, &origin);
    let script = form.flood_script(tmp.path());
    let (answered, passed, refused) = flood(&limited_url, &script, seconds);

    println!("### Cost of one sign-in\n");
    println!("| measure | floor: Argon2id verify in-process | strongbox: POST /sign-in | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| mean of {SIGN_INS} | {:.1} ms | {:.1} ms | {:.2}× |\n",
        ms(floor),
        ms(full),
        full.as_secs_f64() / floor.as_secs_f64()
    );
    let limits = &defaults.rate_limits;
    println!("### A flood of wrong passwords, default rate limits\n");
    println!(
        "`wrk -c{CONNECTIONS} -d{seconds}s` from one address at one account; limits per address \
         {} a minute with a burst of {}, per account {} a minute with a burst of {}.\n",
        limits.auth.per_minute, limits.auth.burst, limits.account.per_minute, limits.account.burst
    );
    println!("| measure | figure |");
    println!("|---|---|");
    println!("| requests answered a second | {answered:.0} |");
    println!("| reached the password check | {passed} |");
    println!("| refused with 429 | {refused} |");
}

/// The mean time of `SIGN_INS` runs of `run`.
fn mean(mut run: impl FnMut()) -> Duration {
    run();
    let started = Instant::now();
    for _ in 0..SIGN_INS {
        run();
    }
    started.elapsed() / SIGN_INS as u32
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The sign-in form as a browser holds it: its pre-session cookie and CSRF token.
struct SignInForm {
    url: String,
    origin: String,
    cookie: String,
    csrf: String,
    http: ureq::Agent,
}

impl SignInForm {
    fn load(base: &str, origin: &str) -> Self {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut page = http
            .get(&format!("{base}/sign-in"))
            .call()
            .expect("sign-in page");
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        let body = page.body_mut().read_to_string().expect("page");
        let marker = "name=\"csrf\" value=\"";
        let start = body.find(marker).expect("csrf field") + marker.len();
        let csrf = body[start..].split('"').next().expect("csrf").to_string();
        Self {
            url: format!("{base}/sign-in"),
            origin: origin.to_string(),
            cookie,
            csrf,
            http,
        }
    }

    fn body(&self, password: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", &self.csrf)
            .append_pair("email", EMAIL)
            .append_pair("password", password)
            .finish()
    }

    /// Posts the form with `password`; the response's status.
    fn post(&self, password: &str) -> u16 {
        self.http
            .post(&self.url)
            .header("Cookie", &self.cookie)
            .header("Origin", &self.origin)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(self.body(password))
            .expect("sign in")
            .status()
            .as_u16()
    }

    /// A wrk script posting wrong passwords that counts refusals and everything else.
    fn flood_script(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let lua = format!(
            "wrk.method = \"POST\"\n\
             wrk.body = [==[{}]==]\n\
             wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n\
             wrk.headers[\"Cookie\"] = [==[{}]==]\n\
             wrk.headers[\"Origin\"] = [==[{}]==]\n\
             local threads = {{}}\n\
             setup = function(thread) table.insert(threads, thread) end\n\
             init = function() refused = 0; passed = 0 end\n\
             response = function(status)\n  \
               if status == 429 then refused = refused + 1 else passed = passed + 1 end\nend\n\
             done = function()\n  local r, p = 0, 0\n  \
               for _, t in ipairs(threads) do r = r + t:get(\"refused\"); p = p + t:get(\"passed\") end\n  \
               io.write(\"counted \" .. p .. \" \" .. r .. \"\\n\")\nend\n",
            self.body("not the passphrase"),
            self.cookie,
            self.origin
        );
        let path = dir.join("flood.lua");
        std::fs::write(&path, lua).expect("script");
        path
    }
}

/// Requests answered a second, and how many reached the password check and were refused.
fn flood(url: &str, script: &std::path::Path, seconds: u32) -> (f64, u64, u64) {
    let text = setup::wrk_text(
        &format!("{url}/sign-in"),
        CONNECTIONS,
        seconds,
        Some(script),
    );
    let line = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"))
            .trim()
            .to_string()
    };
    let counted = line("counted");
    let mut counts = counted.split(' ').map(|n| n.parse::<u64>().expect("count"));
    let (passed, refused) = (counts.next().unwrap(), counts.next().unwrap());
    (
        line("Requests/sec:").parse().expect("requests/sec"),
        passed,
        refused,
    )
}
