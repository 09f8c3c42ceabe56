//! Bounds-checked reading of the binary formats a peer sends (Automerge chunks and columns,
//! packed changes): a read past the end or a number too large is an error, never a panic.

/// What was wrong with the bytes (a fixed text, for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    /// Bytes read so far.
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(Malformed("truncated"))?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    pub fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| Malformed("truncated"))
    }

    /// An unsigned LEB128 number.
    pub fn uleb(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed("number too large"))
    }

    /// An unsigned LEB128 number and whether it was written in its shortest form.
    pub fn uleb_minimal(&mut self) -> Result<(u64, bool), Malformed> {
        let start = self.pos;
        let value = self.uleb()?;
        Ok((value, self.pos - start == uleb_len(value)))
    }

    /// A signed LEB128 number.
    pub fn sleb(&mut self) -> Result<i64, Malformed> {
        let mut value = 0i64;
        let mut shift = 0u32;
        loop {
            let byte = self.byte()?;
            if shift == 63 && byte & 0x7e != 0 && byte & 0x7e != 0x7e {
                return Err(Malformed("number too large"));
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
            if shift > 63 {
                return Err(Malformed("number too large"));
            }
        }
    }

    /// A length, which must fit in what is left.
    pub fn len(&mut self) -> Result<usize, Malformed> {
        self.len_of(1)
    }

    /// A count of items at least `size` bytes each, which must fit in what is left.
    pub fn len_of(&mut self, size: usize) -> Result<usize, Malformed> {
        let n = self.uleb()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(size.max(1)) <= self.bytes.len() - self.pos)
            .ok_or(Malformed("length beyond the end"))
    }
}

/// Append `v` as unsigned LEB128.
pub(crate) fn write_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Bytes of `v` as unsigned LEB128.
pub(crate) fn uleb_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_reads_as_automerge_writes() {
        for v in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            i64::MAX,
            i64::MIN,
            1 << 40,
            -(1 << 40),
        ] {
            let mut buf = Vec::new();
            let mut x = v;
            loop {
                let byte = (x & 0x7f) as u8;
                x >>= 7;
                let done = (x == 0 && byte & 0x40 == 0) || (x == -1 && byte & 0x40 != 0);
                buf.push(if done { byte } else { byte | 0x80 });
                if done {
                    break;
                }
            }
            assert_eq!(Reader::new(&buf).sleb().unwrap(), v, "{buf:02x?}");
        }
        assert_eq!(Reader::new(&[0xff; 11]).uleb().ok(), None);
        for v in [0u64, 127, 128, u64::MAX] {
            let mut buf = Vec::new();
            write_uleb(&mut buf, v);
            assert_eq!(buf.len(), uleb_len(v));
            assert_eq!(Reader::new(&buf).uleb_minimal(), Ok((v, true)));
        }
        // 0 written in two bytes reads, but not as the shortest form.
        assert_eq!(Reader::new(&[0x80, 0x00]).uleb_minimal(), Ok((0, false)));
    }
}
