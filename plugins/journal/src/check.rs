//! Reading a journal the `journal` resource type wrote, and checking it: each resource instance's
//! possibly-online intervals (from `online-begin` to `offline` or `terminate`; an interval whose
//! process died ends at its last line plus one `alive` period), the pairs of intervals of one label
//! on two network namespaces (two nodes) that overlap, and when a label was (fully) online. Pure:
//! the text in, the findings out. Not the writing (lib.rs) nor the faults (the tests).

use std::collections::BTreeMap;
use std::fmt;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at_ns: u64,
    pub event: String,
    pub netns: u64,
    pub pid: u32,
    pub label: String,
}

/// One possibly-online interval of one label on one node (network namespace) and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub label: String,
    pub netns: u64,
    pub pid: u32,
    /// `online-begin`.
    pub from_ns: u64,
    /// When `online` returned (None: it never did).
    pub online_ns: Option<u64>,
    /// `offline` / `terminate`, or the last line + one alive period for a host that died.
    pub to_ns: u64,
    /// False when the end is the estimate for a host that died.
    pub closed: bool,
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' on netns {} (pid {}) from {} to {} ns{}",
            self.label,
            self.netns,
            self.pid,
            self.from_ns,
            self.to_ns,
            if self.closed {
                ""
            } else {
                " (host died; end estimated)"
            }
        )
    }
}

/// Parses a journal; a malformed line is an error naming its number.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(n, l)| parse_line(l).ok_or_else(|| format!("journal line {}: {l:?}", n + 1)))
        .collect()
}

fn parse_line(line: &str) -> Option<Line> {
    let mut f = line.split(' ');
    let parsed = Line {
        at_ns: f.next()?.parse().ok()?,
        event: f.next()?.to_string(),
        netns: f.next()?.parse().ok()?,
        pid: f.next()?.parse().ok()?,
        label: f.next()?.to_string(),
    };
    f.next().is_none().then_some(parsed)
}

/// Every interval in the journal, in order of start; `alive_ns` is the longest alive period used.
pub fn intervals(lines: &[Line], alive_ns: u64) -> Vec<Interval> {
    let mut open: BTreeMap<(String, u64, u32), Interval> = BTreeMap::new();
    let mut last_seen: BTreeMap<(String, u64, u32), u64> = BTreeMap::new();
    let mut done = Vec::new();
    let mut sorted: Vec<&Line> = lines.iter().collect();
    sorted.sort_by_key(|l| l.at_ns);
    for l in sorted {
        let key = (l.label.clone(), l.netns, l.pid);
        last_seen.insert(key.clone(), l.at_ns);
        match l.event.as_str() {
            "online-begin" => {
                open.entry(key).or_insert_with(|| Interval {
                    label: l.label.clone(),
                    netns: l.netns,
                    pid: l.pid,
                    from_ns: l.at_ns,
                    online_ns: None,
                    to_ns: l.at_ns,
                    closed: false,
                });
            }
            "online" => {
                if let Some(i) = open.get_mut(&key) {
                    i.online_ns.get_or_insert(l.at_ns);
                }
            }
            "offline" | "terminate" => {
                if let Some(mut i) = open.remove(&key) {
                    i.to_ns = l.at_ns;
                    i.closed = true;
                    done.push(i);
                }
            }
            _ => {}
        }
    }
    for (key, mut i) in open {
        i.to_ns = last_seen[&key] + alive_ns;
        done.push(i);
    }
    done.sort_by_key(|i| i.from_ns);
    done
}

/// Every pair of intervals of one label on two different nodes that overlap in time.
pub fn overlaps(intervals: &[Interval]) -> Vec<(Interval, Interval)> {
    let mut found = Vec::new();
    for (n, a) in intervals.iter().enumerate() {
        for b in &intervals[n + 1..] {
            if b.from_ns >= a.to_ns {
                continue;
            }
            if a.label == b.label
                && a.netns != b.netns
                && b.from_ns < a.to_ns
                && a.from_ns < b.to_ns
            {
                found.push((a.clone(), b.clone()));
            }
        }
    }
    found
}

/// The first instant at or after `from_ns` at which `label` is fully online somewhere (its
/// `online` has returned and its interval has not ended), with the node's netns. An interval
/// still open in the journal ends one alive period after its last line, like one whose host
/// died: a host that died is not online after it, and a running one's end moves on with its
/// alive lines, so ask only about instants the journal has reached.
pub fn online_from(intervals: &[Interval], label: &str, from_ns: u64) -> Option<(u64, u64)> {
    intervals
        .iter()
        .filter(|i| i.label == label)
        .filter_map(|i| {
            let online = i.online_ns?;
            let at = online.max(from_ns);
            (at < i.to_ns).then_some((at, i.netns))
        })
        .min()
}

/// The first instant in `from_ns..=until_ns` at which `label` is fully online somewhere, with
/// the node's netns: `online_from` bounded by a deadline (None when it was not online in time).
pub fn online_within(
    intervals: &[Interval],
    label: &str,
    from_ns: u64,
    until_ns: u64,
) -> Option<(u64, u64)> {
    online_from(intervals, label, from_ns).filter(|(at, _)| *at <= until_ns)
}

/// The intervals of `label` that touch `from_ns..until_ns`, in order of start: what a checker
/// prints when a label was not online in time.
pub fn intervals_between<'a>(
    intervals: &'a [Interval],
    label: &str,
    from_ns: u64,
    until_ns: u64,
) -> Vec<&'a Interval> {
    intervals
        .iter()
        .filter(|i| i.label == label && i.from_ns < until_ns && i.to_ns >= from_ns)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(lines: &[(u64, &str, u64, u32, &str)]) -> Vec<Line> {
        let text: String = lines
            .iter()
            .map(|(t, e, n, p, l)| format!("{t} {e} {n} {p} {l}\n"))
            .collect();
        parse(&text).unwrap()
    }

    #[test]
    fn a_clean_move_has_no_overlap_and_a_double_online_is_found() {
        let moved = journal(&[
            (100, "online-begin", 1, 10, "g"),
            (110, "online", 1, 10, "g"),
            (150, "alive", 1, 10, "g"),
            (200, "offline-begin", 1, 10, "g"),
            (210, "offline", 1, 10, "g"),
            (220, "online-begin", 2, 20, "g"),
            (230, "online", 2, 20, "g"),
        ]);
        let iv = intervals(&moved, 50);
        assert_eq!(iv.len(), 2);
        assert!(overlaps(&iv).is_empty());
        assert_eq!(online_from(&iv, "g", 215), Some((230, 2)));
        assert_eq!(online_from(&iv, "g", 0), Some((110, 1)));

        let split = journal(&[
            (100, "online-begin", 1, 10, "g"),
            (110, "online", 1, 10, "g"),
            (400, "alive", 1, 10, "g"),
            (420, "online-begin", 2, 20, "g"),
            (430, "online", 2, 20, "g"),
            (500, "terminate", 1, 10, "g"),
        ]);
        let found = overlaps(&intervals(&split, 50));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0.netns, found[0].1.netns), (1, 2));
    }

    #[test]
    fn a_dead_host_ends_one_alive_period_after_its_last_line() {
        let died = journal(&[
            (100, "online-begin", 1, 10, "g"),
            (110, "online", 1, 10, "g"),
            (300, "alive", 1, 10, "g"),
            (340, "online-begin", 2, 20, "g"),
            (345, "online", 2, 20, "g"),
        ]);
        let iv = intervals(&died, 50);
        assert!(!iv[0].closed && iv[0].to_ns == 350, "{:?}", iv[0]);
        assert_eq!(overlaps(&iv).len(), 1, "340 is inside 100..350");
        let later = intervals(&died, 30);
        assert!(overlaps(&later).is_empty(), "ends at 330, before 340");
        // Other labels and the same node never count.
        let mixed = journal(&[
            (100, "online-begin", 1, 10, "a"),
            (105, "online-begin", 2, 20, "b"),
            (106, "online-begin", 1, 11, "a"),
        ]);
        assert!(overlaps(&intervals(&mixed, 50)).is_empty());
    }

    #[test]
    fn malformed_lines_are_named() {
        assert!(parse("1 online 2 3 g\nnope\n")
            .unwrap_err()
            .starts_with("journal line 2"));
        assert!(parse("1 online 2 3 g extra\n").is_err());
    }

    #[test]
    fn online_within_a_window_and_the_intervals_touching_it() {
        let moved = journal(&[
            (100, "online-begin", 1, 10, "g"),
            (110, "online", 1, 10, "g"),
            (200, "terminate", 1, 10, "g"),
            (900, "online-begin", 2, 20, "g"),
            (950, "online", 2, 20, "g"),
            (960, "alive", 2, 20, "g"),
        ]);
        let iv = intervals(&moved, 50);
        assert_eq!(online_within(&iv, "g", 150, 160), Some((150, 1)));
        assert_eq!(online_within(&iv, "g", 300, 949), None, "offline 200..950");
        assert_eq!(online_within(&iv, "g", 300, 950), Some((950, 2)));
        assert_eq!(online_within(&iv, "h", 0, u64::MAX), None);
        let touching = intervals_between(&iv, "g", 150, 300);
        assert_eq!(touching.len(), 1);
        assert_eq!(touching[0].netns, 1);
        assert_eq!(intervals_between(&iv, "g", 0, 2000).len(), 2);
        // The host on netns 2 died after its alive line at 960: not online from 1010 on.
        assert_eq!(online_from(&iv, "g", 1009), Some((1009, 2)));
        assert_eq!(online_from(&iv, "g", 1010), None);
        assert!(intervals_between(&iv, "g", 300, 800).is_empty());
    }
}
