//! Alerts: how soon a listening client hears a match after the COPY that completes it, and
//! what watching rules cost ingest (rows/s of COPY with 100 rules over a 100,000-key
//! partition column against none).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use crate::systems::henge::Henge;
use crate::{percentile, Result};

/// What `measure` found.
pub struct AlertFigures {
    /// From sending a COPY whose last row completes a match to its notification at a
    /// listening client.
    pub p50: Duration,
    pub p99: Duration,
    pub samples: usize,
    /// Of those, how many notifications arrived before the COPY's acknowledgement.
    pub before_ack: usize,
    /// COPY rows per second without rules and with them.
    pub rows: usize,
    pub rules: usize,
    pub keys: usize,
    pub base_rate: f64,
    pub rules_rate: f64,
    /// Matches the rules reported during the loaded run.
    pub fired: i64,
}

const TABLE: &str = "CREATE TABLE {name} (ts TIMESTAMP NOT NULL, card TEXT NOT NULL, \
    status TEXT NOT NULL, category TEXT NOT NULL, amount DOUBLE PRECISION) \
    WITH (time_column = 'ts', segment_granularity = 'hour')";

fn table(name: &str) -> String {
    TABLE.replace("{name}", name)
}

/// A COPY text line of a transaction.
fn line(second: u64, card: usize, failed: bool, category: usize, amount: u64) -> String {
    format!(
        "2024-06-01 {:02}:{:02}:{:02}\tcard{card}\t{}\tc{category}\t{amount}\n",
        second / 3600 % 24,
        second / 60 % 60,
        second % 60,
        if failed { "failed" } else { "ok" }
    )
}

pub async fn measure(
    henge: &Henge,
    samples: usize,
    rows: usize,
    rules: usize,
    keys: usize,
) -> Result<AlertFigures> {
    let (p50, p99, before_ack) = latency(henge, samples).await?;
    let (base_rate, rules_rate, fired) = cost(henge, rows, rules, keys).await?;
    Ok(AlertFigures {
        p50,
        p99,
        samples,
        before_ack,
        rows,
        rules,
        keys,
        base_rate,
        rules_rate,
        fired,
    })
}

/// Each sample: a COPY of three failed transactions of a fresh card (the third completes
/// "three failures within an hour"), timed from sending it to the notification.
async fn latency(henge: &Henge, samples: usize) -> Result<(Duration, Duration, usize)> {
    let client = henge.connect().await?;
    client.execute(&table("lat")).await?;
    client
        .execute(
            "CREATE ALERT lat_failures ON lat WHERE status = 'failed' PARTITION BY card \
             WITHIN INTERVAL '1 hour' WHEN count(*) >= 3 NOTIFY lat_alerts INTO lat_alerts",
        )
        .await?;
    let (listener, mut connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=henge dbname=henge",
            henge.port()
        ),
        tokio_postgres::NoTls,
    )
    .await?;
    let (tx, mut heard) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(_) = message {
                if tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        }
    });
    listener.batch_execute("LISTEN lat_alerts").await?;
    let mut times = Vec::with_capacity(samples);
    let mut before_ack = 0;
    for i in 0..samples {
        let text: String = (0..3)
            .map(|k| line(i as u64 * 4 + k, i, true, 0, 1))
            .collect();
        let sent = Instant::now();
        client.copy_text("lat", Bytes::from(text)).await?;
        let acknowledged = Instant::now();
        let arrived = tokio::time::timeout(Duration::from_secs(10), heard.recv())
            .await
            .map_err(|_| "no notification within 10 s")?
            .ok_or("the listener ended")?;
        if arrived <= acknowledged {
            before_ack += 1;
        }
        times.push(arrived.duration_since(sent));
    }
    times.sort();
    Ok((
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        before_ack,
    ))
}

/// COPY of `rows` transactions over `keys` cards into a table without rules, then into one
/// watched by `rules` rules; rows per second of each (the median chunk rate).
async fn cost(henge: &Henge, rows: usize, rules: usize, keys: usize) -> Result<(f64, f64, i64)> {
    let client = henge.connect().await?;
    // Deterministic pseudo-random transactions, in time order over a day.
    let mut seed: u64 = 42;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let lines: Vec<String> = (0..rows)
        .map(|i| {
            let second = i as u64 * 86_000 / rows as u64;
            let card = (next() % keys as u64) as usize;
            line(
                second,
                card,
                next() % 10 == 0,
                (next() % 10) as usize,
                next() % 1000,
            )
        })
        .collect();
    let chunk = (rows / 10).max(1);
    let load = |name: &'static str| {
        let client = &client;
        let lines = &lines;
        async move {
            let mut total = Duration::ZERO;
            for part in lines.chunks(chunk) {
                let text = Bytes::from(part.concat());
                let began = Instant::now();
                client.copy_text(name, text).await?;
                total += began.elapsed();
            }
            Ok::<f64, Box<dyn std::error::Error + Send + Sync>>(rows as f64 / total.as_secs_f64())
        }
    };
    client.execute(&table("plain_tx")).await?;
    let base = load("plain_tx").await?;
    client.execute(&table("watched_tx")).await?;
    for r in 0..rules {
        // Rules of several shapes: each watches one category's failures or its big amounts.
        let sql = match r % 3 {
            0 => format!(
                "CREATE ALERT rule{r} ON watched_tx WHERE status = 'failed' AND category = 'c{}' \
                 PARTITION BY card WITHIN INTERVAL '{} hours' WHEN count(*) >= {} INTO rule_alerts",
                r % 10,
                1 + r % 4,
                2 + r % 3
            ),
            1 => format!(
                "CREATE ALERT rule{r} ON watched_tx WHERE category = 'c{}' PARTITION BY card \
                 WITHIN INTERVAL '1 hour' WHEN sum(amount) >= {} INTO rule_alerts",
                r % 10,
                1500 + r
            ),
            _ => format!(
                "CREATE ALERT rule{r} ON watched_tx WHERE amount >= {} PARTITION BY card \
                 WITHIN INTERVAL '6 hours' WHEN count(DISTINCT category) >= 2 INTO rule_alerts",
                900 + r
            ),
        };
        client.execute(&sql).await?;
    }
    let watched = load("watched_tx").await?;
    let fired = client
        .query("SELECT count(*) FROM rule_alerts")
        .await?
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((base, watched, fired))
}

impl AlertFigures {
    pub fn markdown(&self) -> String {
        format!(
            "| measure | value |\n|---|---|\n\
             | COPY sent → notification at a listening client, p50 | {:.2} ms |\n\
             | same, p99 | {:.2} ms |\n\
             | samples (notifications before the COPY's acknowledgement) | {} ({}) |\n\
             | COPY rows/s, no rules | {:.0} |\n\
             | COPY rows/s, {} rules over {} keys | {:.0} |\n\
             | slowdown | {:.1} % |\n\
             | matches reported in the watched load | {} |\n",
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.samples,
            self.before_ack,
            self.base_rate,
            self.rules,
            self.keys,
            self.rules_rate,
            (1.0 - self.rules_rate / self.base_rate) * 100.0,
            self.fired,
        )
    }
}
