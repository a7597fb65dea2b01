//! Time as whole Unix seconds, the unit every record and message of the trust uses.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch. The core never reads a clock: callers pass `now` in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnixSeconds(pub i64);

impl UnixSeconds {
    pub fn plus_seconds(self, seconds: i64) -> UnixSeconds {
        UnixSeconds(self.0.saturating_add(seconds))
    }

    /// The UTC calendar month, as "YYYY-MM" (proleptic Gregorian, H. Hinnant's algorithm).
    pub fn month(self) -> String {
        let (year, month, _) = self.civil_date();
        format!("{year:04}-{month:02}")
    }

    /// The instant as RFC 3339 in UTC, to the second: "YYYY-MM-DDTHH:MM:SSZ", the way
    /// people and tools read it.
    pub fn rfc3339(self) -> String {
        let (year, month, day) = self.civil_date();
        let seconds = self.0.rem_euclid(86_400);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            seconds / 3600,
            seconds % 3600 / 60,
            seconds % 60
        )
    }

    /// Parses an RFC 3339 date ("2026-09-01", midnight UTC) or date-time
    /// ("2026-09-01T08:30:00Z", "2026-09-01T10:30:00+02:00"; fractions of a second are
    /// dropped). `None` for anything else, impossible dates included.
    pub fn parse_rfc3339(text: &str) -> Option<UnixSeconds> {
        let number = |part: &str| -> Option<i64> {
            (!part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let (date, time) = match text.split_once(['T', 't', ' ']) {
            Some((date, time)) => (date, Some(time)),
            None => (text, None),
        };
        let mut fields = date.split('-');
        let (year, month, day) = (
            number(fields.next()?)?,
            number(fields.next()?)?,
            number(fields.next()?)?,
        );
        if fields.next().is_some() || !(1..=12).contains(&month) || day < 1 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        // The day must exist in its month (no 2026-02-30).
        if UnixSeconds(days * 86_400).civil_date() != (year, month, day) {
            return None;
        }
        let Some(time) = time else {
            return Some(UnixSeconds(days * 86_400));
        };
        let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, 0)
        } else {
            let split = time.rfind(['+', '-'])?;
            let (clock, zone) = time.split_at(split);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = zone[1..].split_once(':')?;
            let (hours, minutes) = (number(hours)?, number(minutes)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            (clock, sign * (hours * 3600 + minutes * 60))
        };
        let clock = clock.split('.').next()?;
        let mut parts = clock.split(':');
        let (hour, minute, second) = (
            number(parts.next()?)?,
            number(parts.next()?)?,
            number(parts.next()?)?,
        );
        if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        Some(UnixSeconds(
            days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        ))
    }

    /// (year, month, day) of the UTC calendar date (H. Hinnant's `civil_from_days`).
    fn civil_date(self) -> (i64, i64, i64) {
        let days = self.0.div_euclid(86_400);
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        (year, month, day)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl std::fmt::Display for UnixSeconds {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::UnixSeconds;

    #[test]
    fn rfc3339_text_parses_to_the_instant_it_names() {
        for seconds in [0, 951_782_400, 1_798_761_599, 1_788_220_800, -1] {
            let text = UnixSeconds(seconds).rfc3339();
            assert_eq!(
                UnixSeconds::parse_rfc3339(&text),
                Some(UnixSeconds(seconds)),
                "{text}"
            );
        }
        assert_eq!(
            UnixSeconds::parse_rfc3339("2026-09-01"),
            Some(UnixSeconds(1_788_220_800))
        );
        assert_eq!(
            UnixSeconds::parse_rfc3339("2026-09-01T02:00:00+02:00"),
            Some(UnixSeconds(1_788_220_800))
        );
        assert_eq!(
            UnixSeconds::parse_rfc3339("2026-09-01T00:00:00.750Z"),
            Some(UnixSeconds(1_788_220_800))
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-9-1x",
            "yesterday",
            "2026-09-01T25:00:00Z",
            "",
        ] {
            assert_eq!(UnixSeconds::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(UnixSeconds(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixSeconds(951_782_400).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(UnixSeconds(1_798_761_599).rfc3339(), "2026-12-31T23:59:59Z");
        assert_eq!(UnixSeconds(-1).rfc3339(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn months_of_known_instants() {
        assert_eq!(UnixSeconds(0).month(), "1970-01");
        assert_eq!(UnixSeconds(951_782_400).month(), "2000-02"); // 2000-02-29
        assert_eq!(UnixSeconds(951_868_799).month(), "2000-02");
        assert_eq!(UnixSeconds(951_868_800).month(), "2000-03");
        assert_eq!(UnixSeconds(1_798_761_599).month(), "2026-12"); // 2026-12-31T23:59:59
        assert_eq!(UnixSeconds(1_798_761_600).month(), "2027-01");
        assert_eq!(UnixSeconds(-1).month(), "1969-12");
    }
}
