//! Memory a conversion thread keeps between conversions: the decode buffer and the resizer's working buffers.
//!
//! A 24 MP photo decodes into about 70 MB. Allocated fresh for every photo, that memory comes from the kernel
//! as new pages (the allocator maps and unmaps blocks this large), and faulting in and zeroing those pages cost
//! about a sixth of a whole conversion. Kept per thread, the pages stay mapped from one photo to the next.
//! [`release_thread_buffers`] gives them back when a thread runs out of work.

use std::cell::{Cell, RefCell};

use fast_image_resize::Resizer;

thread_local! {
    /// The decode buffer of the last conversion on this thread, empty between batches.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// The resizer, whose working buffers and filter coefficients are reused.
    static RESIZER: RefCell<Option<Resizer>> = const { RefCell::new(None) };
}

/// A buffer of `len` zero bytes, made from this thread's spare buffer when that is large enough. Zeroing it
/// again costs a fraction of what fresh pages cost, and no pixels of an earlier image can show through.
pub(crate) fn zeroed(len: usize) -> Vec<u8> {
    let mut buffer = SPARE.take();
    if buffer.capacity() < len {
        // Fresh zeroed memory from the allocator: cheaper than growing (which would copy) and then zeroing.
        return vec![0; len];
    }
    buffer.clear();
    buffer.resize(len, 0);
    buffer
}

/// Keeps `buffer` as this thread's spare for the next [`zeroed`], unless the spare already held is larger.
pub(crate) fn recycle(buffer: Vec<u8>) {
    SPARE.with(|spare| {
        let held = spare.take();
        spare.set(if buffer.capacity() >= held.capacity() { buffer } else { held });
    });
}

/// Runs `work` with this thread's resizer.
pub(crate) fn with_resizer<T>(work: impl FnOnce(&mut Resizer) -> T) -> T {
    RESIZER.with_borrow_mut(|slot| work(slot.get_or_insert_with(Resizer::new)))
}

/// Frees the memory this thread keeps between conversions (its decode buffer and resizer). A conversion thread
/// calls it when its queue runs empty, so an idle service holds no image-sized buffers; the next conversion
/// allocates afresh.
pub fn release_thread_buffers() {
    drop(SPARE.take());
    RESIZER.with_borrow_mut(|slot| drop(slot.take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_is_reused_zeroed_and_released() {
        release_thread_buffers();
        let mut first = zeroed(1000);
        first.fill(7);
        let address = first.as_ptr();
        recycle(first);
        let second = zeroed(600);
        assert_eq!(second.as_ptr(), address, "the spare was reused");
        assert!(second.iter().all(|&byte| byte == 0), "no bytes of the earlier image remain");
        recycle(second);
        // A smaller buffer does not replace a larger spare.
        recycle(vec![1; 10]);
        let third = zeroed(900);
        assert_eq!(third.as_ptr(), address);
        recycle(third);
        release_thread_buffers();
        assert_eq!(SPARE.take().capacity(), 0);
    }
}
