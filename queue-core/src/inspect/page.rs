//! Pages of a listing: which slice to read, and what came back.

/// Page size of Sidekiq's `each` (50 entries per `LRANGE`/`ZRANGE`).
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// Largest page: one `LRANGE`/`ZREVRANGE` reply stays small enough not to stall the
/// shared connection for other callers.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A slice of a listing: page `index` (0-based) of `size` entries.
///
/// ```
/// use queue_core::inspect::{Page, MAX_PAGE_SIZE};
/// let p = Page::new(2, 25);
/// assert_eq!((p.start(), p.stop()), (50, 74));
/// assert_eq!(Page::new(0, 0).size(), 1);
/// assert_eq!(Page::new(0, 1_000_000).size(), MAX_PAGE_SIZE);
/// assert_eq!(Page::first().next().unwrap().index(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    index: u32,
    size: u32,
}

impl Page {
    /// Page `index` (0-based) of `size` entries; `size` is clamped to 1..=[`MAX_PAGE_SIZE`].
    pub fn new(index: u32, size: u32) -> Self {
        Self {
            index,
            size: size.clamp(1, MAX_PAGE_SIZE),
        }
    }

    /// The first page of [`DEFAULT_PAGE_SIZE`] entries.
    pub fn first() -> Self {
        Self::new(0, DEFAULT_PAGE_SIZE)
    }

    /// The page after this one, of the same size (`None` past `u32::MAX` pages).
    pub fn next(self) -> Option<Self> {
        Some(Self {
            index: self.index.checked_add(1)?,
            size: self.size,
        })
    }

    /// The page's index, 0-based.
    pub fn index(self) -> u32 {
        self.index
    }

    /// Entries per page.
    pub fn size(self) -> u32 {
        self.size
    }

    /// Position of the page's first entry in the listing.
    pub fn start(self) -> u64 {
        // At most (2^32 - 1) * 1000, far below u64::MAX and i64::MAX (Redis indexes).
        u64::from(self.index) * u64::from(self.size)
    }

    /// Position of the page's last entry (inclusive, as `LRANGE` takes it).
    pub fn stop(self) -> u64 {
        // `size` ≥ 1, and `start` is far below u64::MAX (see `start`).
        self.start() + u64::from(self.size) - 1
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::first()
    }
}

/// One page of a listing and the size of the whole listing, read in one round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// The page's entries, in listing order.
    pub items: Vec<T>,
    /// Entries in the whole list or set when the page was read.
    pub total: u64,
    /// The page that was read.
    pub page: Page,
}

impl<T> Listing<T> {
    /// Whether entries follow this page.
    ///
    /// ```
    /// use queue_core::inspect::{Listing, Page};
    /// let l = Listing { items: vec![1, 2], total: 3, page: Page::new(0, 2) };
    /// assert!(l.has_more());
    /// let l = Listing { items: vec![3], total: 3, page: Page::new(1, 2) };
    /// assert!(!l.has_more());
    /// ```
    pub fn has_more(&self) -> bool {
        // usize → u64 is lossless on every supported target.
        let seen = self.page.start().saturating_add(self.items.len() as u64);
        seen < self.total
    }
}
