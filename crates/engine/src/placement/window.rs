//! The failback window: whether a group may move back to its preferred owner at this local hour.
//! Not the decision to move (rules.rs).

/// FailbackWindowStart..FailbackWindowEnd at local hour `hour`: no window (either unset) always
/// allows; otherwise start inclusive, end exclusive, wrapping midnight when start > end, and
/// start == end allows that one hour. An unknown hour allows only when there is no window.
pub fn failback_allowed(start: Option<u32>, end: Option<u32>, hour: Option<u32>) -> bool {
    let (Some(start), Some(end)) = (start, end) else {
        return true;
    };
    let Some(h) = hour else { return false };
    match start.cmp(&end) {
        std::cmp::Ordering::Equal => h == start,
        std::cmp::Ordering::Less => start <= h && h < end,
        std::cmp::Ordering::Greater => h >= start || h < end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_window_always_allows() {
        assert!(failback_allowed(None, None, None));
        assert!(failback_allowed(Some(3), None, Some(12)));
        assert!(failback_allowed(None, Some(3), None));
    }

    #[test]
    fn a_day_window_is_start_inclusive_end_exclusive() {
        let w = |h| failback_allowed(Some(9), Some(17), Some(h));
        assert!(!w(8));
        assert!(w(9));
        assert!(w(16));
        assert!(!w(17));
        assert!(!failback_allowed(Some(9), Some(17), None));
    }

    #[test]
    fn a_window_wraps_midnight() {
        let w = |h| failback_allowed(Some(22), Some(4), Some(h));
        assert!(w(22));
        assert!(w(23));
        assert!(w(0));
        assert!(w(3));
        assert!(!w(4));
        assert!(!w(12));
        assert!(!w(21));
    }

    #[test]
    fn equal_hours_mean_that_hour() {
        assert!(failback_allowed(Some(5), Some(5), Some(5)));
        assert!(!failback_allowed(Some(5), Some(5), Some(6)));
    }
}
