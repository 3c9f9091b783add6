//! A WebSocket prime checker: send a whole number, get a verdict.
//!
//! Run it: `cargo run -p waterspout -- serve --build examples/primes` from the
//! repository root, then connect to `ws://127.0.0.1:8888/primes`.
//!
//! Protocol (text messages, one answer per message):
//! - `7` → `7 is prime`
//! - `8` → `8 is not prime`
//! - ` 13 ` → `13 is prime` (surrounding whitespace is ignored)
//! - `seven` → `error: "seven" is not a whole number`
//! - a binary message → `error: send the number as text`

use waterspout_sdk::log;
use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Primes;

impl WebSocketHandler for Primes {
    fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
        let answer = match message.as_text() {
            Some(text) => verdict(text),
            None => "error: send the number as text".to_owned(),
        };
        if let Err(error) = ctx.write_message(answer) {
            log::warn!("primes: cannot reply: {error}");
        }
    }
}

export_websocket_handler!(Primes);

/// The answer to one message.
fn verdict(text: &str) -> String {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(n) if is_prime(n) => format!("{n} is prime"),
        Ok(n) => format!("{n} is not prime"),
        Err(_) => format!("error: {text:?} is not a whole number"),
    }
}

/// Trial division by 2, 3 and then 6k ± 1 up to √n: fast enough for any u64
/// a person types, and obviously right.
fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let mut k = 5u64;
    while k.saturating_mul(k) <= n {
        if n.is_multiple_of(k) || n.is_multiple_of(k + 2) {
            return false;
        }
        k += 6;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{is_prime, verdict};

    #[test]
    fn small_numbers() {
        let primes: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    }

    #[test]
    fn answers_read_well() {
        assert_eq!(verdict("7"), "7 is prime");
        assert_eq!(verdict(" 8\n"), "8 is not prime");
        assert_eq!(verdict("seven"), "error: \"seven\" is not a whole number");
    }
}
