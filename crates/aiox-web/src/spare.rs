//! Spare [`HeaderMap`]s per thread: the header map of a finished [`Request`]
//! becomes the header map of the next [`Response`] built on the thread, so a
//! keep-alive connection serves requests without allocating header maps (hyper already
//! reuses each response's map for the next request head it parses).
//!
//! A map with more room than [`MAX_SPARE_CAPACITY`] headers is dropped instead of
//! kept, and only small maps are kept past [`MAX_LARGE_SPARES`], so a thread holds
//! at most ~280 KiB of spares, usually a few KiB.
//!
//! [`Request`]: crate::Request
//! [`Response`]: crate::Response

use std::cell::RefCell;

use http::HeaderMap;

/// Largest header map (in header slots) kept as a spare: requests from browsers
/// carry 10-20 headers; a map grown for a larger head is freed.
const MAX_SPARE_CAPACITY: usize = 64;

/// Most spare maps kept per thread: an HTTP/2 connection hands over a batch of
/// requests before their responses are built, up to its 128 concurrent streams
/// (`DEFAULT_H2_MAX_CONCURRENT_STREAMS`).
const MAX_SPARES: usize = 128;

/// Spare maps of any kept size per thread; the stack holds only small maps (at most
/// [`SMALL_SPARE_CAPACITY`] slots) above them. So a thread keeps at most
/// 16 x 64 + 112 x 12 slots (~280 KiB at ~120 bytes a slot), usually a few KiB.
const MAX_LARGE_SPARES: usize = 16;

/// A small map: room for a typical request's 6 to 12 headers.
const SMALL_SPARE_CAPACITY: usize = 12;

thread_local! {
    static SPARES: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// Keeps the map of a finished request, emptied, as a spare if it has room and not
/// too much and the thread has fewer than [`MAX_SPARES`] (or, for a map that is not
/// small, [`MAX_LARGE_SPARES`]); else drops it.
pub(crate) fn put(mut map: HeaderMap) {
    let capacity = map.capacity();
    if capacity == 0 || capacity > MAX_SPARE_CAPACITY {
        return;
    }
    // During thread teardown the slot is gone: the map is simply dropped.
    let _ = SPARES.try_with(|spares| {
        if let Ok(mut spares) = spares.try_borrow_mut() {
            let len = spares.len();
            if len < MAX_SPARES && (len < MAX_LARGE_SPARES || capacity <= SMALL_SPARE_CAPACITY) {
                map.clear();
                spares.push(map);
            }
        }
    });
}

/// Gives `map`, which must be a new map (`HeaderMap::new`), a spare if the thread has
/// one.
pub(crate) fn take(map: &mut HeaderMap) {
    let _ = SPARES.try_with(|spares| {
        if let Ok(mut spares) = spares.try_borrow_mut() {
            if let Some(spare) = spares.pop() {
                let fresh = std::mem::replace(map, spare);
                // A new map owns no memory (no capacity, nothing allocated): skipping
                // its drop glue leaks nothing and saves ~60 instructions a response.
                debug_assert_eq!(fresh.capacity(), 0);
                std::mem::forget(fresh);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use http::header::{ACCEPT, CONTENT_TYPE, HOST};
    use http::{HeaderMap, HeaderValue};

    fn taken() -> HeaderMap {
        let mut map = HeaderMap::new();
        super::take(&mut map);
        map
    }

    #[test]
    fn a_put_map_comes_back_empty_with_its_room() {
        let mut map = HeaderMap::new();
        map.insert(HOST, HeaderValue::from_static("example.com"));
        map.insert(ACCEPT, HeaderValue::from_static("*/*"));
        let capacity = map.capacity();
        super::put(map);
        let spare = taken();
        assert!(spare.is_empty());
        assert_eq!(spare.capacity(), capacity);
        // Taken once: there is none left.
        assert_eq!(taken().capacity(), 0);
    }

    #[test]
    fn at_most_max_spares_are_kept() {
        for _ in 0..super::MAX_SPARES + 5 {
            let mut map = HeaderMap::new();
            map.insert(HOST, HeaderValue::from_static("example.com"));
            super::put(map);
        }
        let mut kept = 0;
        while taken().capacity() != 0 {
            kept += 1;
        }
        assert_eq!(kept, super::MAX_SPARES);
    }

    #[test]
    fn past_max_large_spares_only_small_maps_are_kept() {
        let map_with = |capacity: usize| {
            let mut map = HeaderMap::with_capacity(capacity);
            map.insert(HOST, HeaderValue::from_static("example.com"));
            map
        };
        let large = map_with(48);
        assert!(large.capacity() > super::SMALL_SPARE_CAPACITY);
        assert!(large.capacity() <= super::MAX_SPARE_CAPACITY);
        let small = map_with(6);
        assert!(small.capacity() <= super::SMALL_SPARE_CAPACITY);
        for _ in 0..super::MAX_LARGE_SPARES + 5 {
            super::put(large.clone());
        }
        super::put(small.clone());
        // Top first: the small map, then only MAX_LARGE_SPARES large ones.
        assert_eq!(taken().capacity(), small.capacity());
        let mut kept = 0;
        while taken().capacity() == large.capacity() {
            kept += 1;
        }
        assert_eq!(kept, super::MAX_LARGE_SPARES);
    }

    #[test]
    fn oversized_and_empty_maps_are_not_kept() {
        let mut big = HeaderMap::with_capacity(super::MAX_SPARE_CAPACITY * 2);
        big.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        super::put(big);
        assert_eq!(taken().capacity(), 0);
        super::put(HeaderMap::new());
        assert_eq!(taken().capacity(), 0);
    }
}
