//! A millisecond timeline for `keelson demo cluster`: rows taken from the nodes' cluster.log lines
//! and events.jsonl (each stamped by the node that wrote it, to the millisecond, UTC) and from the
//! demo's and the client's own clocks, shown as ms since an origin (the cut, the kill), as text or
//! JSON. Not what the rows mean: the scenario picks and checks them.

use keelson_types::{parse_iso_time, parse_log_line_time};
use serde_json::{json, Value};

/// One point in time and what happened then, and who said so (`n1 cluster.log`, `client`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub at_ms: u64,
    pub source: String,
    pub text: String,
}

/// The rows of one part of the scenario, relative to `origin_ms`.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub origin_ms: u64,
    rows: Vec<Row>,
}

impl Timeline {
    pub fn new(origin_ms: u64, what: &str) -> Timeline {
        let mut t = Timeline {
            origin_ms,
            rows: Vec::new(),
        };
        t.push(origin_ms, "demo", what);
        t
    }

    pub fn push(&mut self, at_ms: u64, source: &str, text: &str) {
        self.rows.push(Row {
            at_ms,
            source: source.to_string(),
            text: text.to_string(),
        });
    }

    pub fn extend(&mut self, rows: impl IntoIterator<Item = Row>) {
        self.rows.extend(rows);
    }

    /// The rows in time order (stable: equal stamps keep their insertion order).
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = self.rows.clone();
        rows.sort_by_key(|r| r.at_ms);
        rows
    }

    /// The first row whose text contains `needle`, as ms since the origin.
    pub fn first(&self, needle: &str) -> Option<i64> {
        self.first_where(|text| text.contains(needle))
    }

    /// The first row whose text satisfies `pred`, as ms since the origin.
    pub fn first_where(&self, pred: impl Fn(&str) -> bool) -> Option<i64> {
        self.rows()
            .iter()
            .find(|r| pred(&r.text))
            .map(|r| self.since(r.at_ms))
    }

    /// ms since the origin; negative for what came before it (the client's last answer).
    pub fn since(&self, at_ms: u64) -> i64 {
        at_ms as i64 - self.origin_ms as i64
    }

    pub fn print(&self, out: &mut dyn FnMut(&str)) {
        for r in self.rows() {
            out(&format!(
                "  {:>6} ms  {:<17} {}",
                self.since(r.at_ms),
                r.source,
                r.text
            ));
        }
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows()
                .iter()
                .map(|r| json!({"at_ms": self.since(r.at_ms), "source": r.source, "text": r.text}))
                .collect(),
        )
    }
}

/// The cluster.log lines of `node` at or after `since_ms` for which `keep` holds, without their
/// pid and time (`INFO [NM] Node 'n2' (id 2) is down: …`).
pub fn log_rows(node: &str, log: &str, since_ms: u64, keep: impl Fn(&str) -> bool) -> Vec<Row> {
    log.lines()
        .filter_map(|line| Some((parse_log_line_time(line)?, line)))
        .filter(|(at, line)| *at >= since_ms && keep(line))
        .map(|(at_ms, line)| Row {
            at_ms,
            source: format!("{node} cluster.log"),
            text: line_text(line).to_string(),
        })
        .collect()
}

/// A cluster.log line without `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm `.
fn line_text(line: &str) -> &str {
    line.split_once("::")
        .and_then(|(_, rest)| rest.get(24..))
        .unwrap_or(line)
}

/// `node`'s events at or after `since_ms` whose id is in `ids`.
pub fn event_rows(node: &str, events: &str, since_ms: u64, ids: &[u64]) -> Vec<Row> {
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["id"].as_u64().is_some_and(|id| ids.contains(&id)))
        .filter_map(|e| {
            let at_ms = parse_iso_time(e["time"].as_str()?)?;
            (at_ms >= since_ms).then(|| Row {
                at_ms,
                source: format!("{node} event"),
                text: format!(
                    "event {} ({}): {}",
                    e["id"],
                    e["level"].as_str().unwrap_or(""),
                    first_sentence(e["message"].as_str().unwrap_or(""))
                ),
            })
        })
        .collect()
}

/// An event's message up to its first full stop: WSFC's messages go on with advice.
fn first_sentence(message: &str) -> &str {
    message.find(". ").map_or(message, |end| &message[..=end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "0000758e.0000758b::2026/11/25-08:06:48.173 INFO [NM] Node 'n2' (id 2) is down: all 2 routes to it are down";

    #[test]
    fn log_lines_become_rows_without_their_stamp() {
        let at = parse_log_line_time(LINE).unwrap();
        let rows = log_rows("n1", LINE, at, |l| l.contains("[NM]"));
        assert_eq!(
            rows,
            vec![Row {
                at_ms: at,
                source: "n1 cluster.log".into(),
                text: "INFO [NM] Node 'n2' (id 2) is down: all 2 routes to it are down".into()
            }]
        );
        assert!(log_rows("n1", LINE, at + 1, |_| true).is_empty());
    }

    #[test]
    fn rows_are_shown_in_time_order_since_the_origin() {
        let mut t = Timeline::new(1_000, "kill -9");
        t.push(1_900, "client", "back");
        t.push(1_500, "n1 cluster.log", "down");
        t.push(990, "client", "last answer");
        let shown: Vec<(i64, String)> = t
            .rows()
            .iter()
            .map(|r| (t.since(r.at_ms), r.text.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (-10, "last answer".into()),
                (0, "kill -9".into()),
                (500, "down".into()),
                (900, "back".into())
            ]
        );
        assert_eq!(t.first("back"), Some(900));
        assert_eq!(t.to_json()[2]["at_ms"], 500);
    }

    #[test]
    fn events_are_filtered_by_id_and_time() {
        let text = r#"{"id":1641,"time":"2026-11-25T08:06:48.173Z","level":"Information","message":"moving"}
{"id":1135,"time":"2026-11-25T08:06:48.100Z","level":"Critical","message":"removed"}
{"id":1135,"time":"2026-11-25T08:06:49.100Z","level":"Critical","message":"Node 'n2' was removed. Run the wizard."}"#;
        let at = parse_iso_time("2026-11-25T08:06:48.173Z").unwrap();
        let rows = event_rows("n3", text, 0, &[1641]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].at_ms, at);
        assert_eq!(rows[0].text, "event 1641 (Information): moving");
        let rows = event_rows("n3", text, at, &[1135]);
        assert_eq!(rows.len(), 1, "only the one at or after the time");
        assert_eq!(
            rows[0].text,
            "event 1135 (Critical): Node 'n2' was removed."
        );
    }
}
