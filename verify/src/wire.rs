//! Reading the SSH wire format (RFC 4251, section 5): big-endian integers and length-prefixed
//! strings, every read bounds-checked, for SSHSIG blobs and OpenSSH certificates.

/// A field that runs past the end of its blob, named by what was being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated(pub(crate) &'static str);

/// A cursor over untrusted bytes; each read names the field it was reading when it fails.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Truncated> {
        if self.0.len() < n {
            return Err(Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Truncated> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Truncated> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_be_bytes(a))
    }

    /// A `string`: a u32 length, then that many bytes.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<&'a [u8], Truncated> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    /// One `string` field, returned with its length prefix (to copy it verbatim).
    pub(crate) fn raw_string(&mut self, what: &'static str) -> Result<&'a [u8], Truncated> {
        let start = self.0;
        let n = self.string(what)?.len();
        Ok(&start[..4 + n])
    }
}
