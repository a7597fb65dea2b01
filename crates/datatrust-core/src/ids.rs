//! Identifiers and money as types that cannot hold a bad value: each is parsed once, at the
//! boundary, with the field it came from, and the core's commands take only these.

use std::fmt;

use crate::FieldError;

/// An identifier of `DIGITS` lowercase hex digits.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $digits:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses `text` (hex digits, either case; kept lowercase), naming `field` when
            /// it is not one.
            pub fn parse(text: &str, field: &str) -> Result<$name, FieldError> {
                if text.len() != $digits || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    return Err(FieldError::new(
                        field,
                        concat!("must be ", stringify!($digits), " hex digits"),
                    ));
                }
                Ok($name(text.to_ascii_lowercase()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

hex_id!(
    /// A license's id: the first 16 bytes of the SHA-256 of its text, in hex.
    LicenseId,
    32
);
hex_id!(
    /// A license request's id: 8 random bytes, in hex.
    RequestId,
    16
);
hex_id!(
    /// A release's id: 8 random bytes, in hex.
    ReleaseId,
    16
);
hex_id!(
    /// A charge's id: the first 16 bytes of the SHA-256 of what it charges for, in hex.
    ChargeId,
    32
);
hex_id!(
    /// The SHA-256 of a terms document, in hex: the terms' identity.
    TermsHash,
    64
);

/// A currency: an ISO 4217 code, three capital letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(text: &str, field: &str) -> Result<Currency, FieldError> {
        if text.len() != 3 || !text.bytes().all(|byte| byte.is_ascii_uppercase()) {
            return Err(FieldError::new(
                field,
                "an ISO 4217 code, three capital letters (EUR, USD)",
            ));
        }
        Ok(Currency(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Currency {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An amount of money to move: a positive whole number of the currency's minor units
/// (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

impl Amount {
    pub fn parse(minor_units: u64, field: &str) -> Result<Amount, FieldError> {
        if minor_units == 0 {
            return Err(FieldError::new(
                field,
                "must be more than 0 (in the currency's minor units, e.g. cents)",
            ));
        }
        Ok(Amount(minor_units))
    }

    pub fn minor_units(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_once_and_kept_lowercase() {
        let id = LicenseId::parse(&"AB".repeat(16), "license_id").unwrap();
        assert_eq!(id.as_str(), "ab".repeat(16));
        let refused = RequestId::parse("xyz", "request_id").unwrap_err();
        assert_eq!(refused.field, "request_id");
        assert!(TermsHash::parse(&"0".repeat(63), "terms_sha256").is_err());
        assert!(ReleaseId::parse(&"0".repeat(16), "release_id").is_ok());
        assert!(ChargeId::parse(&"g".repeat(32), "charge_id").is_err());
    }

    #[test]
    fn money_is_a_currency_and_a_positive_amount() {
        assert!(Currency::parse("EUR", "currency").is_ok());
        assert!(Currency::parse("eur", "currency").is_err());
        assert!(Currency::parse("EURO", "currency").is_err());
        assert_eq!(Amount::parse(0, "amount").unwrap_err().field, "amount");
        assert_eq!(Amount::parse(5, "amount").unwrap().minor_units(), 5);
    }
}
