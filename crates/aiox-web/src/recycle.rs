//! Recycled memory for handler futures: [`HandlerFuture`].
//!
//! The router stores handlers as trait objects, so each request runs its handler's
//! future behind a type-erased pointer. In a `Box` that is one `malloc` and one `free`
//! per request, ~130 instructions with glibc's allocator (1.6% of a whole `GET /` on
//! `hello`). A [`HandlerFuture`] takes its memory from a small per-thread cache of
//! blocks instead, and gives the block back when it is dropped (~25 instructions).
//!
//! Bounds: blocks of 64, 128, 256, 512 and 1,024 bytes, 16-byte aligned; each thread
//! keeps at most [`CACHE_BYTES_PER_CLASS`] (64 KiB) of free blocks of each size, so
//! 1,024 blocks of 64 bytes or 64 of 1 KiB (enough for a burst of 128 concurrent
//! HTTP/2 streams, the default stream limit, of a small handler), and returns the
//! rest to the allocator; a future larger than 1 KiB, or more aligned, gets a plain
//! `Box`. A block freed on another thread than the one that
//! took it joins the freeing thread's cache. The cache is freed when its thread ends.
//!
//! This module holds most of the crate's `unsafe` code (STYLE.md: a measured hot
//! path; the only other is `Request`'s `Drop`). What it relies on: a block is used by one future at a time, is at least as
//! large and as aligned as that future's type, and stays put from the future's
//! construction to its drop.

#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Block sizes, smallest first.
const CLASS_SIZES: [usize; 5] = [64, 128, 256, 512, 1024];

/// Alignment of every block: enough for any future that holds ordinary Rust values.
const BLOCK_ALIGN: usize = 16;

/// Bytes of free blocks of each size a thread keeps for the next requests.
const CACHE_BYTES_PER_CLASS: usize = 64 * 1024;

/// Free blocks of each class a thread keeps.
const KEEP: [usize; CLASS_SIZES.len()] = {
    let mut keep = [0; CLASS_SIZES.len()];
    let mut class = 0;
    while class < keep.len() {
        keep[class] = CACHE_BYTES_PER_CLASS / CLASS_SIZES[class];
        class += 1;
    }
    keep
};

/// The layout of each class's blocks.
const BLOCK_LAYOUTS: [Layout; CLASS_SIZES.len()] = {
    let mut layouts = [Layout::new::<u8>(); CLASS_SIZES.len()];
    let mut class = 0;
    while class < layouts.len() {
        layouts[class] = match Layout::from_size_align(CLASS_SIZES[class], BLOCK_ALIGN) {
            Ok(layout) => layout,
            Err(_) => panic!("block sizes are multiples of the alignment"),
        };
        class += 1;
    }
    layouts
};

/// The block size class that fits `layout`, if any (`None`: the future is boxed).
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size == 0 || size > CLASS_SIZES[CLASS_SIZES.len() - 1] || layout.align() > BLOCK_ALIGN {
        return None;
    }
    // 64 -> 0, 128 -> 1, ...: the sizes are consecutive powers of two.
    let log2 = size
        .max(CLASS_SIZES[0])
        .next_power_of_two()
        .trailing_zeros();
    Some((log2 - CLASS_SIZES[0].trailing_zeros()) as usize)
}

/// A thread's free blocks: for each size class, a list threaded through the blocks
/// themselves (a free block's first word points to the next one) and its length.
struct Cache {
    heads: [Cell<Option<NonNull<u8>>>; CLASS_SIZES.len()],
    lens: [Cell<usize>; CLASS_SIZES.len()],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, head) in self.heads.iter().enumerate() {
            let mut next = head.take();
            while let Some(block) = next {
                // SAFETY: a cached block is unused and its first word holds the next
                // block of the list (`give_block`).
                next = unsafe { block.cast::<Option<NonNull<u8>>>().as_ptr().read() };
                // SAFETY: every cached block was allocated with the layout of its class.
                unsafe { alloc::dealloc(block.as_ptr(), BLOCK_LAYOUTS[class]) };
            }
        }
    }
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            heads: [const { Cell::new(None) }; CLASS_SIZES.len()],
            lens: [const { Cell::new(0) }; CLASS_SIZES.len()],
        }
    };
}

/// A free block of `class`: from this thread's cache, else new.
#[inline]
fn take_block(class: usize) -> NonNull<u8> {
    let cached = CACHE
        .try_with(|cache| {
            let block = cache.heads[class].get()?;
            // SAFETY: a cached block is unused and its first word holds the next block
            // of the list (`give_block`).
            let next = unsafe { block.cast::<Option<NonNull<u8>>>().as_ptr().read() };
            cache.heads[class].set(next);
            cache.lens[class].set(cache.lens[class].get() - 1);
            Some(block)
        })
        .ok()
        .flatten();
    if let Some(block) = cached {
        return block;
    }
    let layout = BLOCK_LAYOUTS[class];
    // SAFETY: the layout's size is not zero.
    let block = unsafe { alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Gives back a block of `class` no future uses any more.
fn give_block(class: usize, block: NonNull<u8>) {
    let kept = CACHE
        .try_with(|cache| {
            let len = cache.lens[class].get();
            if len >= KEEP[class] {
                return false;
            }
            // SAFETY: the block is unused, and at least 64 bytes and 16-byte aligned:
            // its first word can hold the link.
            unsafe {
                block
                    .cast::<Option<NonNull<u8>>>()
                    .as_ptr()
                    .write(cache.heads[class].get())
            };
            cache.heads[class].set(Some(block));
            cache.lens[class].set(len + 1);
            true
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: the block was allocated with the layout of its class (`take_block`).
        unsafe { alloc::dealloc(block.as_ptr(), BLOCK_LAYOUTS[class]) };
    }
}

/// The future of one handler call, as a route without middleware runs it: a
/// type-erased `Send` future like `Pin<Box<dyn Future>>`, in memory recycled from the
/// thread's earlier requests (see the module docs). Returned by the hidden
/// `Handler::call_http`.
pub struct HandlerFuture<T> {
    /// In a block if [`class_of`] its layout is `Some`, else in a `Box`.
    fut: NonNull<dyn Future<Output = T> + Send>,
}

// SAFETY: a `HandlerFuture` owns its future alone, and that future is `Send`.
unsafe impl<T> Send for HandlerFuture<T> {}

impl<T> HandlerFuture<T> {
    /// Moves `fut` into a recycled block (or a `Box` if it fits none).
    pub fn new<F>(fut: F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
    {
        match class_of(Layout::new::<F>()) {
            Some(class) => {
                let block = take_block(class).cast::<F>();
                // SAFETY: the block is unused and at least as large and as aligned as
                // `F` (`class_of`).
                unsafe { block.as_ptr().write(fut) };
                Self { fut: block }
            }
            None => Self {
                fut: NonNull::from(Box::leak(Box::new(fut))),
            },
        }
    }

    /// The size class of the block that holds the future; `None` if it is boxed.
    fn class(&self) -> Option<usize> {
        // SAFETY: the future is live until `drop` drops it.
        class_of(Layout::for_value(unsafe { self.fut.as_ref() }))
    }
}

impl<T> Future for HandlerFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // SAFETY: `fut` points to a live future that this value alone owns and that
        // does not move until `drop` drops it in place.
        let fut = unsafe { Pin::new_unchecked(&mut *self.fut.as_ptr()) };
        fut.poll(cx)
    }
}

impl<T> Drop for HandlerFuture<T> {
    fn drop(&mut self) {
        let Some(class) = self.class() else {
            // SAFETY: made by `Box::leak` in `new` and owned by this value alone.
            drop(unsafe { Box::from_raw(self.fut.as_ptr()) });
            return;
        };
        /// Gives the block back even if the future's destructor panics.
        struct GiveBack(usize, NonNull<u8>);
        impl Drop for GiveBack {
            fn drop(&mut self) {
                give_block(self.0, self.1);
            }
        }
        let _give_back = GiveBack(class, self.fut.cast());
        // SAFETY: the future is live, owned by this value alone, and not used again.
        unsafe { std::ptr::drop_in_place(self.fut.as_ptr()) };
    }
}

impl<T> std::fmt::Debug for HandlerFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerFuture")
            .field("boxed", &self.class().is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Counts its drops; pads the future to `N` bytes.
    struct Probe<const N: usize> {
        drops: Arc<AtomicUsize>,
        pad: [u8; N],
        polls_left: u32,
    }

    impl<const N: usize> Future for Probe<N> {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            if self.polls_left == 0 {
                return Poll::Ready(self.pad.len() + usize::from(self.pad[N / 2]));
            }
            self.polls_left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    impl<const N: usize> Drop for Probe<N> {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn run<T>(mut fut: HandlerFuture<T>) -> T {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = Pin::new(&mut fut).poll(&mut cx) {
                return out;
            }
        }
    }

    fn probe<const N: usize>(drops: &Arc<AtomicUsize>, polls: u32) -> Probe<N> {
        let mut pad = [0u8; N];
        pad[N / 2] = 7;
        Probe {
            drops: drops.clone(),
            pad,
            polls_left: polls,
        }
    }

    fn cached(class: usize) -> usize {
        CACHE.with(|cache| cache.lens[class].get())
    }

    #[test]
    fn futures_of_every_size_run_and_drop_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        assert_eq!(run(HandlerFuture::new(probe::<8>(&drops, 2))), 8 + 7);
        assert_eq!(run(HandlerFuture::new(probe::<200>(&drops, 0))), 200 + 7);
        assert_eq!(run(HandlerFuture::new(probe::<1000>(&drops, 1))), 1000 + 7);
        // Larger than the largest block: boxed.
        let big = HandlerFuture::new(probe::<4000>(&drops, 1));
        assert!(format!("{big:?}").contains("boxed: true"));
        assert_eq!(run(big), 4000 + 7);
        assert_eq!(run(HandlerFuture::new(async { 5 })), 5);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_dropped_block_is_reused_and_the_cache_is_bounded() {
        let drops = Arc::new(AtomicUsize::new(0));
        let class = class_of(Layout::new::<Probe<300>>()).unwrap();
        let first = HandlerFuture::new(probe::<300>(&drops, 1));
        let addr = first.fut.cast::<u8>();
        drop(first);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped unfinished");
        let second = HandlerFuture::new(probe::<300>(&drops, 0));
        assert_eq!(second.fut.cast::<u8>(), addr, "the block was reused");
        drop(second);

        let many: Vec<_> = (0..KEEP[class] + 10)
            .map(|_| HandlerFuture::new(probe::<300>(&drops, 0)))
            .collect();
        drop(many);
        assert_eq!(cached(class), KEEP[class]);
        assert_eq!(KEEP[class], 128, "64 KiB of 512-byte blocks");
        assert_eq!(drops.load(Ordering::SeqCst), KEEP[class] + 12);
    }

    #[test]
    fn a_future_dropped_on_another_thread_frees_its_block_there() {
        let drops = Arc::new(AtomicUsize::new(0));
        let fut = HandlerFuture::new(probe::<40>(&drops, 3));
        let out = std::thread::spawn(move || {
            let out = run(fut);
            let class = class_of(Layout::new::<Probe<40>>()).unwrap();
            (out, cached(class))
        })
        .join()
        .unwrap();
        assert_eq!(out, (47, 1));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_destructor_still_returns_the_block() {
        // The array pads the future to a mid-size block.
        struct PanicOnDrop(#[allow(dead_code)] [u8; 100]);
        impl Future for PanicOnDrop {
            type Output = ();
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Pending
            }
        }
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("destructor panics");
            }
        }
        let class = class_of(Layout::new::<PanicOnDrop>()).unwrap();
        let before = cached(class);
        let fut = HandlerFuture::new(PanicOnDrop([0; 100]));
        assert_eq!(cached(class), before.saturating_sub(1));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
        assert!(caught.is_err());
        assert_eq!(cached(class), before.max(1));
    }
}
