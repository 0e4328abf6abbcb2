//! Where the current request came from (client IP, user agent, request id), carried
//! implicitly from the HTTP edge to the audit log, the way the tracing span is: a task-local
//! while the request's future runs, and a thread-local while its blocking work runs on the
//! pool. Outside a request (CLI, jobs) there is none.

use std::cell::RefCell;
use std::future::Future;

/// The longest user agent kept; the rest is cut.
const MAX_USER_AGENT_CHARS: usize = 200;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// A client's user agent as it is stored and shown: control characters dropped, cut to
/// `MAX_USER_AGENT_CHARS`.
pub fn kept_user_agent(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect()
}

tokio::task_local! {
    static IN_TASK: RequestMeta;
}

thread_local! {
    static ON_THREAD: RefCell<Option<RequestMeta>> = const { RefCell::new(None) };
}

impl RequestMeta {
    pub fn new(ip: impl ToString, user_agent: Option<&str>, request_id: impl ToString) -> Self {
        let user_agent = user_agent.map(kept_user_agent).filter(|ua| !ua.is_empty());
        Self {
            ip: Some(ip.to_string()),
            user_agent,
            request_id: Some(request_id.to_string()),
        }
    }

    /// The request being served on this task or blocking thread, if any.
    pub fn current() -> Option<Self> {
        IN_TASK
            .try_with(Clone::clone)
            .ok()
            .or_else(|| ON_THREAD.with(|meta| meta.borrow().clone()))
    }

    /// Runs `future` (a request's handling) with this as its request.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        IN_TASK.scope(self, future).await
    }

    /// Runs blocking work for `meta`'s request on this thread, restoring what was there.
    pub fn in_blocking<T>(meta: Option<Self>, work: impl FnOnce() -> T) -> T {
        let _restore = Restore(ON_THREAD.with(|slot| slot.replace(meta)));
        work()
    }
}

/// Puts the thread's previous request back, also when the work panics (pool threads are
/// reused).
struct Restore(Option<RequestMeta>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        ON_THREAD.with(|slot| *slot.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn follows_the_task_and_the_blocking_thread() {
        assert_eq!(RequestMeta::current(), None);
        let meta = RequestMeta::new("192.0.2.1", Some("agent\u{7}/1"), "req-1");
        assert_eq!(meta.user_agent.as_deref(), Some("agent/1"));
        let seen = meta
            .clone()
            .scope(async {
                let captured = RequestMeta::current();
                tokio::task::spawn_blocking(move || {
                    RequestMeta::in_blocking(captured, RequestMeta::current)
                })
                .await
                .unwrap()
            })
            .await;
        assert_eq!(seen, Some(meta));
        assert_eq!(RequestMeta::current(), None);
    }
}
