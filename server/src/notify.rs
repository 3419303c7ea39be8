//! `LISTEN`, `UNLISTEN`, `NOTIFY` and `pg_notify`, as in PostgreSQL.
//!
//! One [`Hub`] per server knows which sessions listen on which channel. Every session has a
//! [`Mailbox`]: a bounded queue of the notifications sent to its channels, which the
//! session's socket loop empties into NotificationResponse messages as soon as the session
//! is idle (it waits on the socket and on the mailbox together), and after each statement
//! outside a transaction block. A sender never waits: a full mailbox drops what does not
//! fit and counts it, and its session is told with a warning when it next hears.
//!
//! As in PostgreSQL, what a transaction does is applied when it commits and forgotten when
//! it rolls back: a NOTIFY (or `pg_notify`) inside a block is sent at COMMIT, once per
//! distinct channel and payload, and LISTEN/UNLISTEN take effect then. Outside a block every
//! statement is its own transaction, and a query string of several statements one.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::Volatility;
use pgwire::error::ErrorInfo;
use pgwire::messages::response::NotificationResponse;
use pgwire::messages::PgWireBackendMessage;

use crate::error::{code, PgError};

/// A payload must be shorter than this many bytes, as in PostgreSQL.
pub const MAX_PAYLOAD: usize = 8000;
/// The longest channel name: PostgreSQL's identifier length.
pub const MAX_CHANNEL: usize = 63;
/// Notifications one session may have waiting; more are dropped and counted.
pub const MAILBOX_CAPACITY: usize = 10_000;
/// What one transaction may have waiting to send at its commit, in bytes of channel and
/// payload; past it a NOTIFY fails, as PostgreSQL's does when its queue is full.
pub const MAX_PENDING_BYTES: usize = 64 << 20;

/// One notification, as the client receives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
    /// The process id of the session that sent it (0 for the server itself: alerts).
    pub pid: i32,
}

/// Which sessions listen on which channel.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, HashMap<u64, Arc<Mailbox>>>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A mailbox for a new session.
    pub fn mailbox(&self) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::default(),
            dropped: AtomicU64::new(0),
            arrived: tokio::sync::Notify::new(),
        })
    }

    /// Sends one notification to every session listening on its channel; never waits.
    /// Returns how many mailboxes took it.
    pub fn send(&self, notification: &Notification) -> usize {
        let listeners: Vec<Arc<Mailbox>> = match lock(&self.channels).get(&notification.channel) {
            Some(listeners) => listeners.values().cloned().collect(),
            None => return 0,
        };
        listeners
            .into_iter()
            .filter(|mailbox| mailbox.push(notification.clone()))
            .count()
    }

    fn listen(&self, channel: &str, mailbox: &Arc<Mailbox>) {
        lock(&self.channels)
            .entry(channel.to_owned())
            .or_default()
            .insert(mailbox.id, mailbox.clone());
    }

    fn unlisten(&self, channel: &str, mailbox: &Mailbox) {
        let mut channels = lock(&self.channels);
        if let Some(listeners) = channels.get_mut(channel) {
            listeners.remove(&mailbox.id);
            if listeners.is_empty() {
                channels.remove(channel);
            }
        }
    }
}

/// The notifications waiting for one session.
#[derive(Debug)]
pub struct Mailbox {
    id: u64,
    queue: Mutex<VecDeque<Notification>>,
    /// Dropped since the session last heard: its queue was full.
    dropped: AtomicU64,
    arrived: tokio::sync::Notify,
}

impl Mailbox {
    /// Queues a notification unless the mailbox is full; false if it was dropped.
    fn push(&self, notification: Notification) -> bool {
        {
            let mut queue = lock(&self.queue);
            if queue.len() >= MAILBOX_CAPACITY {
                drop(queue);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.arrived.notify_one();
                return false;
            }
            queue.push_back(notification);
        }
        self.arrived.notify_one();
        true
    }

    /// Everything waiting, oldest first, and how many were dropped since the last take.
    pub fn take(&self) -> (Vec<Notification>, u64) {
        let waiting: Vec<Notification> = lock(&self.queue).drain(..).collect();
        (waiting, self.dropped.swap(0, Ordering::Relaxed))
    }

    /// The share of the mailbox in use, as `pg_notification_queue_usage()` reports it.
    pub fn usage(&self) -> f64 {
        lock(&self.queue).len() as f64 / MAILBOX_CAPACITY as f64
    }

    /// Resolves when something arrives (at once if something arrived since the last wait).
    pub async fn arrival(&self) {
        self.arrived.notified().await
    }
}

/// What a session's transaction has asked for, applied when it commits.
#[derive(Debug, Default)]
struct Pending {
    /// LISTEN (true) and UNLISTEN (false) of a channel, in order; `None` is `UNLISTEN *`.
    listens: Vec<(Option<String>, bool)>,
    /// Distinct notifications in the order first sent.
    notifications: Vec<Notification>,
    seen: HashSet<Notification>,
    bytes: usize,
}

/// One session's side: its mailbox, its channels and its transaction's pending actions.
#[derive(Debug)]
pub struct Listener {
    hub: Arc<Hub>,
    mailbox: Arc<Mailbox>,
    channels: Mutex<BTreeSet<String>>,
    pending: Mutex<Pending>,
    /// The session's process id, once it has logged in.
    pid: std::sync::atomic::AtomicI32,
}

impl Listener {
    pub fn new(hub: Arc<Hub>) -> Listener {
        let mailbox = hub.mailbox();
        Listener {
            hub,
            mailbox,
            channels: Mutex::default(),
            pending: Mutex::default(),
            pid: std::sync::atomic::AtomicI32::new(0),
        }
    }

    pub fn set_pid(&self, pid: i32) {
        self.pid.store(pid, Ordering::Relaxed);
    }

    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// `LISTEN channel`, at the transaction's commit.
    pub fn listen(&self, channel: &str) {
        lock(&self.pending)
            .listens
            .push((Some(channel.to_owned()), true));
    }

    /// `UNLISTEN channel` (`None`: `UNLISTEN *`), at the transaction's commit.
    pub fn unlisten(&self, channel: Option<&str>) {
        lock(&self.pending)
            .listens
            .push((channel.map(str::to_owned), false));
    }

    /// `NOTIFY channel, payload` or `pg_notify`: checked now, sent at the commit.
    pub fn notify(&self, channel: &str, payload: &str) -> Result<(), PgError> {
        check_channel(channel)?;
        if payload.len() >= MAX_PAYLOAD {
            return Err(PgError::new(
                code::INVALID_PARAMETER_VALUE,
                "payload string too long",
            ));
        }
        let notification = Notification {
            channel: channel.to_owned(),
            payload: payload.to_owned(),
            pid: self.pid.load(Ordering::Relaxed),
        };
        let mut pending = lock(&self.pending);
        // As in PostgreSQL, one transaction sends a channel and payload once.
        if pending.seen.contains(&notification) {
            return Ok(());
        }
        pending.bytes += channel.len() + payload.len();
        if pending.bytes > MAX_PENDING_BYTES {
            return Err(PgError::new(
                code::PROGRAM_LIMIT_EXCEEDED,
                "too many notifications in the NOTIFY queue",
            ));
        }
        pending.seen.insert(notification.clone());
        pending.notifications.push(notification);
        Ok(())
    }

    /// The transaction ended: its actions are applied (committed) or forgotten.
    pub fn finish(&self, committed: bool) {
        let pending = std::mem::take(&mut *lock(&self.pending));
        if !committed {
            return;
        }
        {
            let mut channels = lock(&self.channels);
            for (channel, listen) in pending.listens {
                match (channel, listen) {
                    (Some(channel), true) => {
                        self.hub.listen(&channel, &self.mailbox);
                        channels.insert(channel);
                    }
                    (Some(channel), false) => {
                        self.hub.unlisten(&channel, &self.mailbox);
                        channels.remove(&channel);
                    }
                    (None, _) => {
                        for channel in std::mem::take(&mut *channels) {
                            self.hub.unlisten(&channel, &self.mailbox);
                        }
                    }
                }
            }
        }
        for notification in &pending.notifications {
            self.hub.send(notification);
        }
    }

    /// The channels this session listens on (`pg_listening_channels()`).
    pub fn channels(&self) -> Vec<String> {
        lock(&self.channels).iter().cloned().collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for channel in lock(&self.channels).iter() {
            self.hub.unlisten(channel, &self.mailbox);
        }
    }
}

/// Queues what waits in `mailbox` for the client (NotificationResponse messages, after a
/// warning if some were dropped); the caller flushes.
pub async fn deliver<S>(mailbox: &Mailbox, sink: &mut S) -> Result<(), S::Error>
where
    S: futures::Sink<PgWireBackendMessage> + Unpin,
{
    use futures::SinkExt;
    let (waiting, dropped) = mailbox.take();
    if dropped > 0 {
        let warning = ErrorInfo::new(
            "WARNING".into(),
            code::PROGRAM_LIMIT_EXCEEDED.code().into(),
            format!(
                "{dropped} notifications for this session were dropped: more than \
                 {MAILBOX_CAPACITY} were waiting for it"
            ),
        );
        sink.feed(PgWireBackendMessage::NoticeResponse(warning.into()))
            .await?;
    }
    for n in waiting {
        let message = NotificationResponse::new(n.pid, n.channel, n.payload);
        sink.feed(PgWireBackendMessage::NotificationResponse(message))
            .await?;
    }
    Ok(())
}

/// Registers the session's notification functions: `pg_notify(channel, payload)`,
/// `pg_listening_channels()` and `pg_notification_queue_usage()`.
pub fn register_functions(ctx: &SessionContext, listener: &Arc<Listener>) {
    use henge_planner::pg::functions::RowFunction;
    let text = || DataType::Utf8;
    let sender = listener.clone();
    ctx.register_udf(RowFunction::void_udf(
        "pg_notify",
        vec![vec![text(), text()]],
        Volatility::Volatile,
        Arc::new(move |args| {
            let text = |v: &ScalarValue| match v {
                ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => {
                    s.clone()
                }
                _ => None,
            };
            let channel = text(&args[0]).unwrap_or_default();
            let payload = text(&args[1]).unwrap_or_default();
            sender
                .notify(&channel, &payload)
                .map_err(|e| henge_planner::pg::SqlStateError::new(e.code, e.message).into())
        }),
    ));
    let listening = listener.clone();
    ctx.register_udf(RowFunction::udf(
        "pg_listening_channels",
        vec![vec![]],
        DataType::new_list(text(), true),
        Volatility::Volatile,
        Arc::new(move |_| {
            let channels: Vec<ScalarValue> = listening
                .channels()
                .into_iter()
                .map(|c| ScalarValue::Utf8(Some(c)))
                .collect();
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &channels,
                &DataType::Utf8,
            )))
        }),
    ));
    let usage = listener.clone();
    ctx.register_udf(RowFunction::udf(
        "pg_notification_queue_usage",
        vec![vec![]],
        DataType::Float64,
        Volatility::Volatile,
        Arc::new(move |_| Ok(ScalarValue::Float64(Some(usage.mailbox.usage())))),
    ));
}

/// A channel name PostgreSQL would take.
pub fn check_channel(channel: &str) -> Result<(), PgError> {
    if channel.is_empty() {
        return Err(PgError::new(
            code::INVALID_PARAMETER_VALUE,
            "channel name cannot be empty",
        ));
    }
    if channel.len() > MAX_CHANNEL {
        return Err(PgError::new(
            code::INVALID_PARAMETER_VALUE,
            "channel name too long",
        ));
    }
    Ok(())
}

/// A LISTEN, UNLISTEN or NOTIFY identifier as PostgreSQL reads it: folded to lower case
/// unless quoted, and cut to 63 bytes; `""` is a syntax error there.
pub fn channel_name(ident: &datafusion::sql::sqlparser::ast::Ident) -> Result<String, PgError> {
    if ident.quote_style.is_some() && ident.value.is_empty() {
        return Err(PgError::syntax(
            "zero-length delimited identifier at or near \"\"\"\"",
        ));
    }
    let mut name = match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    };
    if name.len() > MAX_CHANNEL {
        let mut end = MAX_CHANNEL;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(hub: &Arc<Hub>) -> Listener {
        Listener::new(hub.clone())
    }

    #[test]
    fn notifications_reach_listeners_only_after_the_commit() {
        let hub = Arc::new(Hub::default());
        let (a, b) = (listener(&hub), listener(&hub));
        a.listen("jobs");
        a.finish(true);
        b.notify("jobs", "one").unwrap();
        b.notify("jobs", "one").unwrap();
        b.notify("jobs", "two").unwrap();
        assert!(a.mailbox().take().0.is_empty());
        b.finish(true);
        let (got, dropped) = a.mailbox().take();
        let payloads: Vec<&str> = got.iter().map(|n| n.payload.as_str()).collect();
        assert_eq!(payloads, ["one", "two"]);
        assert_eq!(dropped, 0);
        b.notify("jobs", "three").unwrap();
        b.finish(false);
        assert!(a.mailbox().take().0.is_empty());
    }

    #[test]
    fn unlisten_star_and_drop_leave_every_channel() {
        let hub = Arc::new(Hub::default());
        let a = listener(&hub);
        a.listen("x");
        a.listen("y");
        a.finish(true);
        assert_eq!(a.channels(), ["x", "y"]);
        a.unlisten(None);
        a.finish(true);
        assert!(a.channels().is_empty());
        assert!(lock(&hub.channels).is_empty());
        a.listen("z");
        a.finish(true);
        drop(a);
        assert!(lock(&hub.channels).is_empty());
    }

    #[test]
    fn a_full_mailbox_drops_and_counts() {
        let hub = Arc::new(Hub::default());
        let a = listener(&hub);
        a.listen("c");
        a.finish(true);
        let sender = listener(&hub);
        for i in 0..MAILBOX_CAPACITY + 5 {
            sender.notify("c", &i.to_string()).unwrap();
            sender.finish(true);
        }
        let (got, dropped) = a.mailbox().take();
        assert_eq!(got.len(), MAILBOX_CAPACITY);
        assert_eq!(dropped, 5);
    }

    #[test]
    fn payloads_and_channels_are_checked() {
        let hub = Arc::new(Hub::default());
        let a = listener(&hub);
        assert!(a.notify("", "x").is_err());
        assert!(a.notify("c", &"x".repeat(MAX_PAYLOAD)).is_err());
        assert!(a.notify("c", &"x".repeat(MAX_PAYLOAD - 1)).is_ok());
    }
}
