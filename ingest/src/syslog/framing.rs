//! Splitting a TCP byte stream into syslog messages (RFC 6587), auto-detected per
//! message as rsyslog and syslog-ng do:
//!
//! - a message that starts with a digit is **octet-counted**: `LEN SP MSG` with `LEN`
//!   the byte length of `MSG` (at most 10 digits);
//! - anything else (normally `<`) is **non-transparent**: the message ends at LF or NUL;
//!   a CR before the LF is removed. Empty messages are skipped.
//!
//! Digits not followed by a space (a message without PRI starting with a number) are not
//! a length: that message is read with non-transparent framing instead, and will fail to
//! parse as syslog (and be kept as malformed).
//!
//! At most `max` bytes of a message are kept; a longer message yields its first `max`
//! bytes marked truncated and the rest is skipped. So a connection never buffers more
//! than `max` bytes plus one read. At end of stream, a partial message (no terminator
//! yet, or fewer bytes than its count) is yielded, marked truncated when its count was
//! not reached.

/// One message's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    /// The sender's message was longer than the limit, or its octet count was not reached
    /// before the connection closed.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a message.
    Start,
    /// Inside an octet-counted message of this many bytes (the prefix consumed).
    Counted(usize),
    /// Inside a non-transparent message.
    Delimited,
    /// Skipping this many bytes of an oversized octet-counted message.
    SkipCount(usize),
    /// Skipping the rest of an oversized non-transparent message.
    SkipToDelimiter,
}

/// The framer of one connection: [`Framer::push`] what was read, then take frames with
/// [`Framer::next_frame`] until `None`; [`Framer::finish`] at end of stream.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    state: State,
    max: usize,
}

const MAX_LEN_DIGITS: usize = 10;

impl Framer {
    pub fn new(max: usize) -> Self {
        Framer {
            buf: Vec::new(),
            state: State::Start,
            max: max.max(1),
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if the buffer holds one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::Start => {
                    // Skip stray terminators between messages.
                    let skip = self
                        .buf
                        .iter()
                        .take_while(|b| matches!(b, b'\n' | b'\r' | 0))
                        .count();
                    self.buf.drain(..skip);
                    let first = *self.buf.first()?;
                    if !first.is_ascii_digit() {
                        self.state = State::Delimited;
                        continue;
                    }
                    let digits = self
                        .buf
                        .iter()
                        .take(MAX_LEN_DIGITS + 1)
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    match self.buf.get(digits) {
                        None if digits <= MAX_LEN_DIGITS => return None, // need more
                        Some(b' ') if digits <= MAX_LEN_DIGITS => {
                            let len = std::str::from_utf8(&self.buf[..digits])
                                .ok()
                                .and_then(|s| s.parse::<usize>().ok());
                            match len {
                                Some(len) => {
                                    self.buf.drain(..=digits);
                                    self.state = State::Counted(len);
                                }
                                None => self.state = State::Delimited,
                            }
                        }
                        _ => self.state = State::Delimited,
                    }
                }
                State::Counted(len) => {
                    if len == 0 {
                        self.state = State::Start;
                        continue;
                    }
                    if len > self.max {
                        if self.buf.len() < self.max {
                            return None;
                        }
                        let data: Vec<u8> = self.buf.drain(..self.max).collect();
                        self.state = State::SkipCount(len - self.max);
                        return Some(Frame {
                            data,
                            truncated: true,
                        });
                    }
                    if self.buf.len() < len {
                        return None;
                    }
                    let data: Vec<u8> = self.buf.drain(..len).collect();
                    self.state = State::Start;
                    return Some(Frame {
                        data,
                        truncated: false,
                    });
                }
                State::SkipCount(n) => {
                    let k = n.min(self.buf.len());
                    self.buf.drain(..k);
                    if k < n {
                        self.state = State::SkipCount(n - k);
                        return None;
                    }
                    self.state = State::Start;
                }
                State::Delimited => {
                    let limit = self.buf.len().min(self.max + 1);
                    match self.buf[..limit]
                        .iter()
                        .position(|b| matches!(b, b'\n' | 0))
                    {
                        Some(i) if i <= self.max => {
                            let mut data: Vec<u8> = self.buf.drain(..=i).collect();
                            data.pop();
                            if data.last() == Some(&b'\r') {
                                data.pop();
                            }
                            self.state = State::Start;
                            if data.is_empty() {
                                continue;
                            }
                            return Some(Frame {
                                data,
                                truncated: false,
                            });
                        }
                        _ if self.buf.len() > self.max => {
                            let data: Vec<u8> = self.buf.drain(..self.max).collect();
                            self.state = State::SkipToDelimiter;
                            return Some(Frame {
                                data,
                                truncated: true,
                            });
                        }
                        _ => return None,
                    }
                }
                State::SkipToDelimiter => {
                    match self.buf.iter().position(|b| matches!(b, b'\n' | 0)) {
                        Some(i) => {
                            self.buf.drain(..=i);
                            self.state = State::Start;
                        }
                        None => {
                            self.buf.clear();
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// At end of stream: the partial message left, if any.
    pub fn finish(&mut self) -> Option<Frame> {
        let state = std::mem::replace(&mut self.state, State::Start);
        let data = std::mem::take(&mut self.buf);
        let truncated = match state {
            State::SkipCount(_) | State::SkipToDelimiter => return None,
            State::Counted(_) => true,
            State::Start | State::Delimited => false,
        };
        let mut data = data;
        while matches!(data.last(), Some(b'\n' | b'\r' | 0)) {
            data.pop();
        }
        (!data.is_empty()).then_some(Frame { data, truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(f: &mut Framer) -> Vec<(String, bool)> {
        std::iter::from_fn(|| f.next_frame())
            .map(|fr| (String::from_utf8(fr.data).unwrap(), fr.truncated))
            .collect()
    }

    #[test]
    fn mixed_framings_byte_by_byte() {
        let input =
            b"<13>1 - - - - - - a\n11 <13>1 - b c<13>1 - x\r\n\n\0<14>y\x0019 <13>1 - - - - - -\nz";
        // Whole and one byte at a time give the same frames.
        let mut whole = Framer::new(1024);
        whole.push(input);
        let mut got = all(&mut whole);
        got.extend(
            whole
                .finish()
                .map(|f| (String::from_utf8(f.data).unwrap(), f.truncated)),
        );
        let mut bytes = Framer::new(1024);
        let mut got2 = Vec::new();
        for b in input {
            bytes.push(&[*b]);
            got2.extend(all(&mut bytes));
        }
        got2.extend(
            bytes
                .finish()
                .map(|f| (String::from_utf8(f.data).unwrap(), f.truncated)),
        );
        let want: Vec<(String, bool)> = [
            "<13>1 - - - - - - a",
            "<13>1 - b c",
            "<13>1 - x",
            "<14>y",
            "<13>1 - - - - - -\nz",
        ]
        .iter()
        .map(|s| (s.to_string(), false))
        .collect();
        assert_eq!(got, want);
        assert_eq!(got2, want);
    }

    #[test]
    fn oversized_messages_are_truncated_and_the_rest_skipped() {
        let mut f = Framer::new(4);
        f.push(b"10 0123456789<1>ok\n<2>toolong\n<3>\n");
        assert_eq!(
            all(&mut f),
            vec![
                ("0123".into(), true),
                ("<1>o".into(), true),
                ("<2>t".into(), true),
                ("<3>".into(), false),
            ]
        );
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn digits_without_space_are_not_a_count() {
        let mut f = Framer::new(100);
        f.push(b"2024-01-01 no pri\n");
        assert_eq!(all(&mut f), vec![("2024-01-01 no pri".into(), false)]);
        let mut f = Framer::new(100);
        f.push(b"12345678901 x\n");
        assert_eq!(all(&mut f), vec![("12345678901 x".into(), false)]);
    }

    #[test]
    fn partial_message_at_end_of_stream() {
        let mut f = Framer::new(100);
        f.push(b"20 <13>1 - short");
        assert_eq!(all(&mut f), vec![]);
        assert_eq!(
            f.finish(),
            Some(Frame {
                data: b"<13>1 - short".to_vec(),
                truncated: true
            })
        );
        let mut f = Framer::new(100);
        f.push(b"<13>no newline");
        assert_eq!(all(&mut f), vec![]);
        assert_eq!(
            f.finish(),
            Some(Frame {
                data: b"<13>no newline".to_vec(),
                truncated: false
            })
        );
    }
}
