//! Pages of lists: every list answers at most a bounded page, and a token to ask for the
//! next one. The token is the position (the last key read), hex-encoded: opaque to
//! clients, meaningless to anyone who may not read the list, and never a way past access
//! checks (each page is filtered by the caller as the first one is).

use tonic::Status;

/// Items on a page when the caller names no size.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most items on one page, whatever the caller asks.
pub const MAXIMUM_PAGE_SIZE: usize = 1000;

/// A page request, validated.
#[derive(Debug, Clone)]
pub struct Page {
    pub size: usize,
    pub after: Option<Vec<u8>>,
}

impl Page {
    pub fn parse(page_size: u32, page_token: &str) -> Result<Page, Status> {
        Page::parse_sized(page_size, page_token, DEFAULT_PAGE_SIZE, MAXIMUM_PAGE_SIZE)
    }

    /// As `parse`, for a list whose items are large: `default` items when the caller names
    /// no size, never more than `maximum`.
    pub fn parse_sized(
        page_size: u32,
        page_token: &str,
        default: usize,
        maximum: usize,
    ) -> Result<Page, Status> {
        let size = match page_size as usize {
            0 => default,
            size => size.min(maximum),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let key = hex::decode(page_token)
                .ok()
                .filter(|key| key.len() <= 1024)
                .ok_or_else(|| {
                    Status::invalid_argument(
                        "page_token: not a token this list gave out; start again without one",
                    )
                })?;
            Some(key)
        };
        Ok(Page { size, after })
    }
}

/// One page of a list already in memory and sorted by `key` (small lists: one principal's
/// collectors), after the token's key; and the next token.
pub fn slice<T>(items: Vec<T>, page: &Page, key: impl Fn(&T) -> Vec<u8>) -> (Vec<T>, String) {
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| page.after.as_ref().is_none_or(|after| key(item) > *after))
        .collect();
    if rest.len() <= page.size {
        return (rest, String::new());
    }
    rest.truncate(page.size);
    let next = rest
        .last()
        .map(|item| hex::encode(key(item)))
        .unwrap_or_default();
    (rest, next)
}

/// The next page's token: empty when the list is done.
pub fn token(next: Option<Vec<u8>>) -> String {
    next.map(hex::encode).unwrap_or_default()
}
