//! How far a loader's read is, carried beside its batches (since 1.3).
//!
//! Arrow's C stream interface has no place for it, and the root module's
//! layout is frozen for all of 1.x, so it rides in the one text channel the
//! stream has: after a `get_next` that handed over a batch, the stream of a
//! 1.3 plugin whose host asked ([`super::LoaderHints::fraction`]) answers
//! `get_last_error` with a marked text, `{WIRE_MARK}fraction{WIRE_MARK}0.25`.
//! Arrow's own exporter, which every older plugin uses, keeps no text until
//! a call fails (and a failure ends the stream), so after a success it
//! answers NULL: "unknown", never garbage.

use super::guest::WIRE_MARK;
use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The code between the two wire marks of a fraction text.
const FRACTION_CODE: &str = "fraction";

/// The error code of a call on a stream whose wrapper is gone (`EIO`).
const BROKEN_STREAM: c_int = 5;

/// A fraction as the host may use it: a number, clamped to 0..1.
pub(crate) fn clamp(fraction: f64) -> Option<f64> {
    fraction.is_finite().then(|| fraction.clamp(0.0, 1.0))
}

/// The reader's latest answer, shared between the reader's adapter (which
/// writes it after each batch) and the stream wrapper (which reads it).
#[derive(Debug, Clone)]
pub(crate) struct FractionCell(Arc<AtomicU64>);

/// What the cell holds while the reader has not told (or cannot tell).
const UNKNOWN: u64 = u64::MAX;

impl Default for FractionCell {
    fn default() -> Self {
        FractionCell(Arc::new(AtomicU64::new(UNKNOWN)))
    }
}

impl FractionCell {
    pub(crate) fn set(&self, fraction: Option<f64>) {
        let bits = fraction.and_then(clamp).map_or(UNKNOWN, f64::to_bits);
        self.0.store(bits, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            UNKNOWN => None,
            bits => Some(f64::from_bits(bits)),
        }
    }
}

/// The fraction in a stream's text after a successful `get_next`, if it is one.
pub(crate) fn decode(text: &str) -> Option<f64> {
    let number = text
        .strip_prefix(WIRE_MARK)?
        .strip_prefix(FRACTION_CODE)?
        .strip_prefix(WIRE_MARK)?;
    number.parse::<f64>().ok().and_then(clamp)
}

fn encode(fraction: f64) -> Option<CString> {
    CString::new(format!("{WIRE_MARK}{FRACTION_CODE}{WIRE_MARK}{fraction}")).ok()
}

/// `inner` with a `get_last_error` that also answers the fraction in `cell`
/// after each batch; everything else is passed through.
pub(crate) fn wrap(inner: FFI_ArrowArrayStream, cell: FractionCell) -> FFI_ArrowArrayStream {
    let wrapped = Box::new(Wrapped {
        inner,
        cell,
        text: None,
    });
    // SAFETY: every callback below reads `private_data` as the `Wrapped` it
    // is, and `release` frees it exactly once, then marks the stream released.
    unsafe {
        FFI_ArrowArrayStream::new_unchecked(
            Some(get_schema),
            Some(get_next),
            Some(get_last_error),
            Some(release),
            Box::into_raw(wrapped).cast::<c_void>(),
        )
    }
}

struct Wrapped {
    inner: FFI_ArrowArrayStream,
    cell: FractionCell,
    /// The fraction text for the batch just handed over; `None` after any
    /// other call, so the inner stream's own error text shows through.
    text: Option<CString>,
}

/// The wrapper behind `stream`, if it is live.
///
/// # Safety
/// `stream` is null or a stream built by [`wrap`].
unsafe fn wrapped<'a>(stream: *mut FFI_ArrowArrayStream) -> Option<&'a mut Wrapped> {
    if stream.is_null() {
        return None;
    }
    // SAFETY: per the contract, a live stream of ours owns a `Wrapped`.
    let data = unsafe { (*stream).private_data() }.cast::<Wrapped>();
    // SAFETY: as above; null once released.
    unsafe { data.as_mut() }
}

unsafe extern "C" fn get_schema(
    stream: *mut FFI_ArrowArrayStream,
    out: *mut FFI_ArrowSchema,
) -> c_int {
    // SAFETY: the consumer calls this with the stream it was read from.
    let Some(wrapped) = (unsafe { wrapped(stream) }) else {
        return BROKEN_STREAM;
    };
    wrapped.text = None;
    match wrapped.inner.get_schema() {
        // SAFETY: the inner stream is live until the wrapper is released.
        Some(get_schema) => unsafe { get_schema(&mut wrapped.inner, out) },
        None => BROKEN_STREAM,
    }
}

unsafe extern "C" fn get_next(
    stream: *mut FFI_ArrowArrayStream,
    out: *mut FFI_ArrowArray,
) -> c_int {
    // SAFETY: the consumer calls this with the stream it was read from.
    let Some(wrapped) = (unsafe { wrapped(stream) }) else {
        return BROKEN_STREAM;
    };
    wrapped.text = None;
    let Some(get_next) = wrapped.inner.get_next() else {
        return BROKEN_STREAM;
    };
    // SAFETY: the inner stream is live until the wrapper is released.
    let code = unsafe { get_next(&mut wrapped.inner, out) };
    // SAFETY: after a successful call `out` holds an array, released at the end.
    if code == 0 && !out.is_null() && !unsafe { &*out }.is_released() {
        wrapped.text = wrapped.cell.get().and_then(encode);
    }
    code
}

unsafe extern "C" fn get_last_error(stream: *mut FFI_ArrowArrayStream) -> *const c_char {
    // SAFETY: the consumer calls this with the stream it was read from.
    let Some(wrapped) = (unsafe { wrapped(stream) }) else {
        return std::ptr::null();
    };
    if let Some(text) = &wrapped.text {
        return text.as_ptr();
    }
    match wrapped.inner.get_last_error() {
        // SAFETY: the inner stream is live until the wrapper is released.
        Some(get_last_error) => unsafe { get_last_error(&mut wrapped.inner) },
        None => std::ptr::null(),
    }
}

unsafe extern "C" fn release(stream: *mut FFI_ArrowArrayStream) {
    if stream.is_null() {
        return;
    }
    // SAFETY: the consumer releases the stream it was read from, once.
    let stream = unsafe { &mut *stream };
    // SAFETY: the pointer is taken out before it is freed, so it is freed once.
    let data = unsafe { stream.set_private_data(std::ptr::null_mut()) }.cast::<Wrapped>();
    if !data.is_null() {
        // SAFETY: `wrap` made it with `Box::into_raw`; dropping it releases
        // the inner stream, and with it the reader.
        drop(unsafe { Box::from_raw(data) });
    }
    // SAFETY: a released stream has no release callback.
    unsafe { stream.set_release(None) };
}

#[cfg(test)]
mod tests {
    use super::{clamp, decode, encode, FractionCell};

    #[test]
    fn the_cell_keeps_a_clamped_number_or_unknown() {
        let cell = FractionCell::default();
        assert_eq!(cell.get(), None);
        cell.set(Some(0.25));
        assert_eq!(cell.get(), Some(0.25));
        cell.set(Some(1.5));
        assert_eq!(cell.get(), Some(1.0));
        cell.set(Some(-0.1));
        assert_eq!(cell.get(), Some(0.0));
        cell.set(Some(f64::NAN));
        assert_eq!(cell.get(), None);
        cell.set(None);
        assert_eq!(cell.get(), None);
    }

    #[test]
    fn a_fraction_text_round_trips_and_nothing_else_is_one() {
        for fraction in [0.0, 0.125, 1.0 / 3.0, 1.0] {
            let text = encode(fraction).unwrap();
            assert_eq!(decode(text.to_str().unwrap()), Some(fraction));
        }
        assert_eq!(decode("\u{1}fraction\u{1}7"), Some(1.0));
        for other in [
            "",
            "0.5",
            "\u{1}notes\u{1}{}",
            "\u{1}fraction\u{1}inf",
            "\u{1}fraction\u{1}x",
        ] {
            assert_eq!(decode(other), None, "{other:?}");
        }
        assert_eq!(clamp(f64::INFINITY), None);
    }
}
