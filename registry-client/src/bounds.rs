//! The bounds kiln holds registry answers to, and the parts of HTTP it reads itself:
//! `Retry-After`, capped bodies, error bodies.
//!
//! kiln sends its registry requests itself, over the same reqwest oci-client uses, because
//! oci-client 0.17 reads bodies whole before any check and hands no response headers to its
//! caller (see docs/architecture.md, "Registries"). The token exchange is kiln's too.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// The largest config blob kiln reads: 4 MiB. A Wasm config holds a component's WIT summary,
/// typically a few KiB; a descriptor declaring more is refused before any request.
pub const MAX_CONFIG_SIZE: u64 = 4 * 1024 * 1024;

/// The most of a registry's error body kiln reads: 8 KiB (the message shown is a line of it).
pub const MAX_ERROR_BODY: usize = 8 * 1024;

/// How long kiln reads an error body before giving up on the rest.
pub(crate) const ERROR_BODY_TIME: Duration = Duration::from_secs(5);

/// The longest `Retry-After` kiln honours: 60 s. A registry asking for longer is retried after
/// 60 s, and the message says so.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A `Retry-After` value (RFC 9110, section 10.2.3): delta-seconds or an HTTP-date (IMF-fixdate,
/// RFC 850 or asctime form), as the time to wait from `now`. A date in the past is zero;
/// anything else is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: too many of them is "very long", not an error.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Registry-supplied text for a message: at most 200 characters, control characters escaped
/// (so a hostile registry cannot drive the user's terminal).
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 200 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What reading a body with a limit gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Capped {
    /// The whole body, at most the limit.
    Body(Vec<u8>),
    /// More than the limit arrived; reading stopped there.
    TooLarge,
}

/// Reads `stream` to its end, stopping as soon as more than `limit` bytes have arrived.
pub(crate) async fn read_capped<S, E>(mut stream: S, limit: u64) -> Result<Capped, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let total = (body.len() as u64).checked_add(chunk.len() as u64);
        if total.is_none_or(|t| t > limit) {
            return Ok(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Body(body))
}

/// The start of an error body: at most [`MAX_ERROR_BODY`] bytes, read for at most
/// [`ERROR_BODY_TIME`]; what arrived before a failure or the deadline is kept.
pub(crate) async fn read_error_body<S, E>(stream: S) -> Vec<u8>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    read_error_body_within(stream, ERROR_BODY_TIME).await
}

async fn read_error_body_within<S, E>(mut stream: S, time: Duration) -> Vec<u8>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut body = Vec::new();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            let room = MAX_ERROR_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(time, read).await;
    body
}

/// How long to wait before the next attempt, and a note for the message when the registry's
/// `Retry-After` was cut to [`MAX_RETRY_AFTER`].
///
/// `backoff` is the policy's wait for this attempt and `at_least` a floor for the kind of
/// failure (1 s for a 429). A `Retry-After` within the cap is waited in full, even past the
/// policy's longest backoff.
pub(crate) fn next_wait(
    backoff: Duration,
    at_least: Duration,
    max_backoff: Duration,
    retry_after: Option<Duration>,
) -> (Duration, Option<String>) {
    let backoff = backoff.max(at_least).min(max_backoff);
    match retry_after {
        Some(asked) if asked > MAX_RETRY_AFTER => (
            MAX_RETRY_AFTER.max(backoff),
            Some(format!(
                "the registry asked to wait {} s (Retry-After), more than kiln's cap of {} s",
                asked.as_secs(),
                MAX_RETRY_AFTER.as_secs()
            )),
        ),
        Some(asked) => (asked.max(backoff), None),
        None => (backoff, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = at(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        // Far too many digits is a very long wait, which the cap then cuts.
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        // The three HTTP-date forms, 5 s after `now`.
        for date in [
            "Wed, 21 Oct 2015 07:28:05 GMT",
            "Wednesday, 21-Oct-15 07:28:05 GMT",
            "Wed Oct 21 07:28:05 2015",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(5)),
                "{date}"
            );
        }
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "3 s",
            "Wed, 32 Oct 2015 07:28:05 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn waits_honour_retry_after_up_to_the_cap() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // No header: the backoff, at least the floor, at most the policy's longest.
        assert_eq!(
            next_wait(ms(250), Duration::ZERO, s(8), None),
            (ms(250), None)
        );
        assert_eq!(next_wait(ms(250), s(1), s(8), None), (s(1), None));
        assert_eq!(next_wait(s(16), Duration::ZERO, s(8), None), (s(8), None));
        // The header is waited in full, past the policy's longest backoff.
        assert_eq!(next_wait(ms(250), s(1), s(8), Some(s(3))), (s(3), None));
        assert_eq!(next_wait(ms(250), s(1), s(8), Some(s(30))), (s(30), None));
        assert_eq!(
            next_wait(ms(500), Duration::ZERO, s(8), Some(Duration::ZERO)).0,
            ms(500)
        );
        assert_eq!(next_wait(ms(250), s(1), s(8), Some(s(60))), (s(60), None));
        // Over the cap: the cap, said in the message.
        let (wait, note) = next_wait(ms(250), s(1), s(8), Some(s(120)));
        assert_eq!(wait, MAX_RETRY_AFTER);
        let note = note.unwrap();
        assert!(
            note.contains("120 s") && note.contains("cap of 60 s"),
            "{note}"
        );
        let (wait, note) = next_wait(ms(250), s(1), s(8), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(wait, MAX_RETRY_AFTER);
        assert!(note.is_some());
    }

    #[test]
    fn registry_text_is_bounded_and_escaped() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(printable(&"x".repeat(500)).chars().count(), 201);
    }

    #[tokio::test]
    async fn an_endless_body_is_cut_off_at_the_limit() {
        // An endless stream: reading it whole would never end.
        let endless =
            futures_util::stream::repeat_with(|| Ok::<_, ()>(Bytes::from(vec![b'x'; 1000])));
        assert_eq!(read_capped(endless, 4096).await, Ok(Capped::TooLarge));
        let endless =
            futures_util::stream::repeat_with(|| Ok::<_, ()>(Bytes::from(vec![b'x'; 1000])));
        let body = read_error_body(endless).await;
        assert_eq!(body.len(), MAX_ERROR_BODY);
        // Exactly the limit is fine; one byte more is not.
        let parts = || {
            futures_util::stream::iter([
                Ok::<_, ()>(Bytes::from_static(b"ab")),
                Ok(Bytes::from_static(b"cd")),
            ])
        };
        assert_eq!(
            read_capped(parts(), 4).await,
            Ok(Capped::Body(b"abcd".to_vec()))
        );
        assert_eq!(read_capped(parts(), 3).await, Ok(Capped::TooLarge));
        // A transport error passes through.
        let broken = futures_util::stream::iter([Ok(Bytes::from_static(b"ab")), Err("reset")]);
        assert_eq!(read_capped(broken, 10).await, Err("reset"));
    }

    #[tokio::test]
    async fn a_trickled_error_body_is_read_for_a_bounded_time() {
        // One byte, then nothing for ever: the read gives up at the deadline with what came.
        let trickle = futures_util::stream::iter([Ok::<_, ()>(Bytes::from_static(b"e"))])
            .chain(futures_util::stream::pending());
        let body = read_error_body_within(trickle, Duration::from_millis(50)).await;
        assert_eq!(body, b"e");
    }
}
