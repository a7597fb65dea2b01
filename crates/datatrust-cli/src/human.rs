//! Values as people read them: dates as RFC 3339 dates, money in currency units with the
//! currency's own decimals and thousands separated. `--json` keeps machine values.

use datatrust_core::UnixSeconds;

/// Digits after the decimal point of an ISO 4217 currency's minor unit.
pub fn currency_decimals(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// An amount in minor units as "EUR 32,142.86".
pub fn money(currency: &str, minor_units: u64) -> String {
    let decimals = currency_decimals(currency);
    let scale = 10u64.pow(decimals);
    let whole = minor_units / scale;
    let fraction = minor_units % scale;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if decimals == 0 {
        format!("{currency} {grouped}")
    } else {
        format!(
            "{currency} {grouped}.{fraction:0width$}",
            width = decimals as usize
        )
    }
}

/// A Unix time as an RFC 3339 date (the day only when it is midnight UTC).
pub fn date(seconds: i64) -> String {
    let text = UnixSeconds(seconds).rfc3339();
    match text.strip_suffix("T00:00:00Z") {
        Some(day) => day.to_owned(),
        None => text,
    }
}

/// A time on the command line: Unix seconds, or an RFC 3339 date ("2026-09-01", midnight
/// UTC) or date-time ("2026-09-01T08:30:00Z").
pub fn time_argument(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    UnixSeconds::parse_rfc3339(text)
        .map(|time| time.0)
        .ok_or_else(|| {
            format!(
                "{text:?} is not a time: give Unix seconds, a date (2026-09-01) or an RFC 3339 date-time (2026-09-01T08:30:00Z)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_money() {
        assert_eq!(money("EUR", 3_214_286), "EUR 32,142.86");
        assert_eq!(money("EUR", 5), "EUR 0.05");
        assert_eq!(money("JPY", 1_234_567), "JPY 1,234,567");
        assert_eq!(money("KWD", 1_500), "KWD 1.500");
        assert_eq!(money("EUR", 0), "EUR 0.00");
        assert_eq!(money("USD", 100_000_000), "USD 1,000,000.00");
    }

    #[test]
    fn times_are_read_as_seconds_or_dates() {
        assert_eq!(time_argument("1788220800"), Ok(1_788_220_800));
        assert_eq!(time_argument("2026-09-01"), Ok(1_788_220_800));
        assert!(
            time_argument("next tuesday")
                .unwrap_err()
                .contains("2026-09-01")
        );
    }

    #[test]
    fn dates_read_as_dates() {
        assert_eq!(date(1_788_220_800), "2026-09-01");
        assert_eq!(date(1_788_220_801), "2026-09-01T00:00:01Z");
    }
}
