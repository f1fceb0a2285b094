//! Upgrade windows: weekdays and a half-open range of wall-clock minutes in a time zone.
//!
//! A window is a set of instants. For each listed weekday D it covers
//! `[D start, D end)` in the zone's wall-clock time, or `[D start, D+1 end)` when it crosses
//! midnight; wall-clock times are turned into instants with jiff, so DST transition days are
//! right: a time that does not exist (spring forward) resolves to the instant after the gap,
//! a time that exists twice (fall back) to the first of the two.
//!
//! The agent's clock is taken as given. If it moves backwards, `is_open` and `next_open` simply
//! answer for the new time: a window can appear to open twice, and an action scheduled with
//! `not_before` may wait longer; nothing is skipped or run twice by the runtime itself.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

#[derive(Debug, Clone)]
pub struct UpgradeWindow {
    /// Bit 0 Monday … bit 6 Sunday.
    pub days: u8,
    pub start_minute: u16,
    /// Up to 1440 (midnight at the end of the day).
    pub end_minute: u16,
    pub zone: TimeZone,
}

impl UpgradeWindow {
    /// A window that never opens: no days, or an empty time range.
    pub fn never_opens(&self) -> bool {
        self.days & 0x7F == 0 || self.start_minute == self.end_minute
    }

    fn on(&self, date: Date) -> bool {
        let bit = date.weekday().to_monday_zero_offset();
        self.days & (1 << bit) != 0
    }

    fn instant(&self, date: Date, minute: u16) -> Option<Timestamp> {
        let (date, minute) = if minute >= 1440 {
            (date.tomorrow().ok()?, minute - 1440)
        } else {
            (date, minute)
        };
        let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
        // `compatible`: a time in a gap resolves after it, a repeated time to its first pass.
        self.zone
            .to_ambiguous_timestamp(date.to_datetime(time))
            .compatible()
            .ok()
    }

    /// The instants `[start, end)` of the window that opens on `date`.
    fn span(&self, date: Date) -> Option<(Timestamp, Timestamp)> {
        let end_minute = if self.end_minute <= self.start_minute {
            self.end_minute + 1440
        } else {
            self.end_minute
        };
        Some((
            self.instant(date, self.start_minute)?,
            self.instant(date, end_minute)?,
        ))
    }

    pub fn is_open(&self, t: Timestamp) -> bool {
        if self.never_opens() {
            return false;
        }
        let today = self.zone.to_datetime(t).date();
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .any(|d| self.on(d) && self.span(d).is_some_and(|(s, e)| s <= t && t < e))
    }

    /// The first instant at or after `t` when the window is open; `None` if it never opens.
    pub fn next_open(&self, t: Timestamp) -> Option<Timestamp> {
        if self.never_opens() {
            return None;
        }
        if self.is_open(t) {
            return Some(t);
        }
        let today = self.zone.to_datetime(t).date();
        let mut d = today.yesterday().ok()?;
        for _ in 0..10 {
            if self.on(d) {
                if let Some((s, e)) = self.span(d) {
                    if s > t && s < e {
                        return Some(s);
                    }
                }
            }
            d = d.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(days: u8, start: &str, end: &str, zone: &str) -> UpgradeWindow {
        let m = |s: &str| {
            let (h, mi) = s.split_once(':').expect("hh:mm");
            h.parse::<u16>().expect("h") * 60 + mi.parse::<u16>().expect("m")
        };
        UpgradeWindow {
            days,
            start_minute: m(start),
            end_minute: m(end),
            zone: TimeZone::get(zone).expect("zone"),
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    const MON_FRI: u8 = 0b0011111;
    const EVERY_DAY: u8 = 0b1111111;

    #[test]
    fn berlin_spring_forward() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (UTC+1 → UTC+2). Sunday.
        let night = w(EVERY_DAY, "01:00", "05:00", "Europe/Berlin");
        assert!(night.is_open(t("2026-03-29T00:30:00Z"))); // 01:30 CET
        assert!(night.is_open(t("2026-03-29T02:59:00Z"))); // 04:59 CEST
        assert!(!night.is_open(t("2026-03-29T03:00:00Z"))); // 05:00 CEST
                                                            // A window starting inside the gap opens right after it.
        let gap = w(EVERY_DAY, "02:30", "04:00", "Europe/Berlin");
        assert_eq!(
            gap.next_open(t("2026-03-29T00:00:00Z")),
            Some(t("2026-03-29T01:30:00Z"))
        ); // 03:30 CEST
    }

    #[test]
    fn berlin_fall_back() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET. Sunday. 02:30 happens twice.
        let night = w(EVERY_DAY, "02:30", "03:30", "Europe/Berlin");
        assert_eq!(
            night.next_open(t("2026-10-24T20:00:00Z")),
            Some(t("2026-10-25T00:30:00Z"))
        ); // first 02:30 (CEST)
        assert!(night.is_open(t("2026-10-25T01:45:00Z"))); // 02:45 CET, second pass, before 03:30 CET
        assert!(!night.is_open(t("2026-10-25T02:30:00Z"))); // 03:30 CET
    }

    #[test]
    fn los_angeles_spring_forward_and_fall_back() {
        // 2026-03-08 02:00 PST → 03:00 PDT; 2026-11-01 02:00 PDT → 01:00 PST.
        let w1 = w(EVERY_DAY, "01:00", "04:00", "America/Los_Angeles");
        assert!(w1.is_open(t("2026-03-08T09:30:00Z"))); // 01:30 PST
        assert!(w1.is_open(t("2026-03-08T10:30:00Z"))); // 03:30 PDT
        assert!(!w1.is_open(t("2026-03-08T11:00:00Z"))); // 04:00 PDT: 2 real hours long
        assert!(w1.is_open(t("2026-11-01T08:30:00Z"))); // 01:30 PDT
        assert!(w1.is_open(t("2026-11-01T11:30:00Z"))); // 03:30 PST: 4 real hours long
        assert!(!w1.is_open(t("2026-11-01T12:00:00Z"))); // 04:00 PST
    }

    #[test]
    fn crossing_midnight_belongs_to_the_day_it_opens() {
        // Fridays 22:00 to Saturday 02:00, UTC.
        let fri = w(0b0010000, "22:00", "02:00", "UTC");
        assert!(fri.is_open(t("2026-12-04T23:00:00Z"))); // Friday
        assert!(fri.is_open(t("2026-12-05T01:59:00Z"))); // Saturday morning, still Friday's window
        assert!(!fri.is_open(t("2026-12-05T02:00:00Z")));
        assert!(!fri.is_open(t("2026-12-05T23:00:00Z"))); // Saturday night: not a listed day
        assert_eq!(
            fri.next_open(t("2026-12-05T12:00:00Z")),
            Some(t("2026-12-11T22:00:00Z"))
        );
    }

    #[test]
    fn weekdays_all_day_and_never() {
        let weekdays = w(MON_FRI, "00:00", "24:00", "UTC");
        assert!(weekdays.is_open(t("2026-12-04T23:59:59Z"))); // Friday
        assert!(!weekdays.is_open(t("2026-12-05T00:00:00Z"))); // Saturday
        assert_eq!(
            weekdays.next_open(t("2026-12-05T10:00:00Z")),
            Some(t("2026-12-07T00:00:00Z"))
        );
        let never = w(EVERY_DAY, "02:00", "02:00", "UTC");
        assert!(never.never_opens());
        assert_eq!(never.next_open(t("2026-12-05T10:00:00Z")), None);
        let no_days = w(0, "01:00", "02:00", "UTC");
        assert_eq!(no_days.next_open(t("2026-12-05T10:00:00Z")), None);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn next_open_is_open_and_nothing_earlier_is(
            days in 1u8..128,
            start in 0u16..1440,
            len in 1u16..1440,
            zone in prop::sample::select(vec!["Europe/Berlin", "America/Los_Angeles", "UTC", "Asia/Kolkata", "Australia/Lord_Howe"]),
            seconds in 1_767_225_600i64..1_798_761_600, // 2026
        ) {
            let end = (start + len) % 1441;
            let window = UpgradeWindow { days, start_minute: start, end_minute: end.max(1), zone: TimeZone::get(zone).expect("zone") };
            let t = Timestamp::from_second(seconds).expect("t");
            match window.next_open(t) {
                None => prop_assert!(window.never_opens()),
                Some(n) => {
                    prop_assert!(window.is_open(n), "next_open is not open");
                    prop_assert!(n >= t);
                    // No open instant between t and n, checked minute by minute.
                    let mut probe = t;
                    while probe < n {
                        prop_assert!(!window.is_open(probe), "open earlier at {}", probe);
                        probe = probe.checked_add(jiff::SignedDuration::from_secs(60)).expect("add");
                    }
                }
            }
        }
    }
}
