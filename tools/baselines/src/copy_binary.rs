//! PostgreSQL's binary COPY format (`COPY ... FROM STDIN (FORMAT binary)`): a header, rows of
//! length-prefixed big-endian fields, a trailer. Encoding rows this way costs the server no
//! parsing, so a binary COPY is the fastest way rows get into a table.

use uuid::Uuid;

/// 2000-01-01 in Unix milliseconds and days: PostgreSQL's binary epoch.
const PG_EPOCH_MS: i64 = 946_684_800_000;
const PG_EPOCH_DAYS: i32 = 10_957;

/// The data of one binary COPY: call [`CopyBinary::row`] with the field count, then one method
/// per field in the table's column order, and send [`CopyBinary::finish`]'s bytes.
pub struct CopyBinary(Vec<u8>);

impl Default for CopyBinary {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyBinary {
    pub fn new() -> Self {
        let mut buf = b"PGCOPY\n\xff\r\n\0".to_vec();
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBinary(buf)
    }

    /// Starts a row of `fields` fields.
    pub fn row(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        let len = i32::try_from(bytes.len()).expect("a field under 2 GiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.0.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }

    pub fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.i64(v),
            None => self.null(),
        }
    }

    pub fn i32(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.field(&[u8::from(v)]);
    }

    pub fn text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.field(v.as_bytes()),
            None => self.null(),
        }
    }

    pub fn uuid(&mut self, v: Uuid) {
        self.field(v.as_bytes());
    }

    /// Microseconds since 2000-01-01 UTC.
    pub fn timestamptz_ms(&mut self, unix_ms: i64) {
        self.i64((unix_ms - PG_EPOCH_MS) * 1000);
    }

    /// Days since 2000-01-01.
    pub fn opt_date(&mut self, unix_days: Option<i32>) {
        match unix_days {
            Some(days) => self.i32(days - PG_EPOCH_DAYS),
            None => self.null(),
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_its_field_count_then_length_prefixed_fields_between_header_and_trailer() {
        let mut data = CopyBinary::new();
        data.row(2);
        data.i64(7);
        data.text(None);
        let bytes = data.finish();
        let header = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
        assert_eq!(&bytes[..header.len()], header);
        let row = &bytes[header.len()..];
        assert_eq!(row[..2], 2i16.to_be_bytes());
        assert_eq!(row[2..6], 8i32.to_be_bytes());
        assert_eq!(row[6..14], 7i64.to_be_bytes());
        assert_eq!(row[14..18], (-1i32).to_be_bytes());
        assert_eq!(row[18..], (-1i16).to_be_bytes());
    }
}
