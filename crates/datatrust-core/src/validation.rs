//! The one error type for input that fails validation at the boundary: it names the field.

/// A value that was refused, with the field it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error, reported under another field name (a wire name, a flag name).
    pub fn in_field(self, field: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: self.reason,
        }
    }
}

/// How many characters of a caller's value an error message or a log line quotes. A refusal
/// that echoed the whole value would let one caller write megabytes into the trust's log and
/// make a status too large for the client to read.
pub const QUOTED_CHARACTERS: usize = 48;

/// A caller's value as an error message quotes it: debug-escaped, at most
/// `QUOTED_CHARACTERS` characters, with the full length said when it was cut.
pub fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARACTERS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// Characters that change the direction or the visibility of the text around them: the
/// bidirectional embeddings, overrides and isolates (Trojan Source, CVE-2021-42574), the
/// directional marks, and the byte order mark. A name or an agreement holding one can show
/// a reader something other than what it says.
pub fn is_format_trick(character: char) -> bool {
    matches!(
        character,
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// Characters that draw nothing: text made only of these (and spaces) looks empty.
pub fn is_invisible(character: char) -> bool {
    character.is_whitespace()
        || is_format_trick(character)
        || matches!(
            character,
            '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{180E}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
        )
}

/// Refuses text that people will read (names, agreements) when it holds a direction or
/// visibility trick, or shows nothing at all.
pub fn check_readable(text: &str, field: &str) -> Result<(), FieldError> {
    if let Some(character) = text.chars().find(|character| is_format_trick(*character)) {
        return Err(FieldError::new(
            field,
            format!(
                "must not contain U+{:04X}: direction overrides, isolates, marks and byte order marks change what a reader sees",
                u32::from(character)
            ),
        ));
    }
    if text.chars().all(is_invisible) {
        return Err(FieldError::new(field, "must contain a visible character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_cuts_long_values_and_says_their_length() {
        assert_eq!(quoted("ads"), "\"ads\"");
        let long = "x".repeat(1_000_000);
        let quoted_long = quoted(&long);
        assert!(quoted_long.len() < 80, "{quoted_long}");
        assert!(quoted_long.ends_with("(1000000 bytes)"));
        // Cut on a character boundary.
        let wide = "é".repeat(100);
        assert!(quoted(&wide).contains("(200 bytes)"));
    }

    #[test]
    fn readable_text_refuses_tricks_and_invisible_text() {
        assert!(check_readable("Ada Lovelace", "name").is_ok());
        assert!(check_readable("عربي", "name").is_ok());
        for bad in [
            "abc\u{202E}def",
            "abc\u{2066}def\u{2069}",
            "\u{FEFF}",
            "\u{200B}\u{200B}",
            "\u{200D}",
            "\u{200E}x",
        ] {
            let error = check_readable(bad, "name").unwrap_err();
            assert_eq!(error.field, "name", "{bad:?}");
        }
    }
}
