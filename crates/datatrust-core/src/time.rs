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

impl std::fmt::Display for UnixSeconds {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::UnixSeconds;

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
