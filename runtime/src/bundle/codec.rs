//! Little-endian primitives. The reader never panics: every read is bounds-checked.

#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.bytes.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

/// Why the reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The data ends before the value does.
    Truncated { offset: usize },
    /// A string is not UTF-8.
    BadUtf8 { offset: usize },
    /// A length is larger than what is left.
    BadLength { offset: usize },
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Added to positions in errors (where this slice starts in the file).
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], base: usize) -> Reader<'a> {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self.pos.checked_add(n).ok_or(ReadError::Truncated {
            offset: self.offset(),
        })?;
        let slice = self.bytes.get(self.pos..end).ok_or(ReadError::Truncated {
            offset: self.offset(),
        })?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, ReadError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, ReadError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        self.array()
    }

    /// A count of items that each take at least `min_size` bytes: rejects counts the data
    /// cannot hold, so a hostile length never makes us allocate.
    pub fn count(&mut self, min_size: usize) -> Result<usize, ReadError> {
        let at = self.offset();
        let n = self.u32()? as usize;
        let left = self.bytes.len().saturating_sub(self.pos);
        if n.saturating_mul(min_size.max(1)) > left {
            return Err(ReadError::BadLength { offset: at });
        }
        Ok(n)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<String, ReadError> {
        let at = self.offset();
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| ReadError::BadUtf8 { offset: at })
    }
}
