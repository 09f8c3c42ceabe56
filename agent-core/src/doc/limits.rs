//! Bounds on what Automerge bytes from a peer may make a replica do, checked before Automerge
//! parses them.
//!
//! Automerge keeps operations in columns that are run-length encoded (and, in a saved
//! document, deflated), so the bytes do not bound the work: a change of a million inserts
//! fits in about a hundred bytes and took 1.3 s to load; twelve million ops in a 22 KB upload
//! took 28 s and 5.6 GB. Automerge also inflates deflated columns and compressed changes with
//! no bound of its own. [`Meter`] walks the chunk and column headers and counts each column's
//! rows from its run lengths without expanding a run (its cost is linear in the bytes as
//! sent, plus deflated data inflated up to what is left of the budget), and refuses past its
//! budget:
//!
//! - **ops**: for each chunk, the most rows of any of its columns (a change's ops, their
//!   predecessors; a document's ops, their successors, its changes, and the ops its change
//!   metadata declares, which Automerge allocates for), summed over the chunks. Deletes are
//!   ops: a million inserts deleted again is two million.
//! - **bytes**: the chunks with every column as it is once inflated and run-length decoded
//!   (never less than the bytes as sent).
//!
//! [`super::TicketDoc`] measures everything it loads or applies against [`LOAD_MAX`]; a server
//! checks each upload, with its stored copy, against the ticket caps before anything else
//! ([`check_upload`]).

use std::borrow::Cow;
use std::io::Read;

use crate::reader::{uleb_len, Malformed, Reader};
use crate::sync::pack::{self, CHANGE, HASH, MAGIC};

/// Most operations a server accepts in one ticket's history (its stored copy and the upload
/// together). A real ticket holds about 20–60 (registration ~25, one per event, a few material
/// states); 10,000 leaves a margin of over 150 times and still loads in milliseconds.
pub const MAX_TICKET_OPS: u64 = 10_000;
/// Most bytes a server accepts in one ticket's history, run-length decoded and inflated. A
/// real ticket is 1–2 KB; the tablet's own field limits (remarks 500 characters, an event's
/// note 500 and payload 4 KB) let a long-lived ticket with many events reach tens of KB.
pub const MAX_TICKET_BYTES: u64 = 256 << 10;
/// The caps a server checks an upload and its stored copy against.
pub const TICKET_MAX: Size = Size {
    ops: MAX_TICKET_OPS,
    bytes: MAX_TICKET_BYTES,
};
/// Most any replica parses in one load or apply: twice the ticket caps, so a ticket at the
/// caps still loads everywhere with the server's stamps and staff events on top.
pub const LOAD_MAX: Size = Size {
    ops: 2 * MAX_TICKET_OPS,
    bytes: 2 * MAX_TICKET_BYTES,
};

/// What Automerge bytes hold, as [`Meter`] counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub ops: u64,
    pub bytes: u64,
}

/// Why bytes were refused before Automerge parsed them. Shown to agents as it is (Chinese).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Limit {
    #[error("办件数据超过上限（{max}项操作），未接收，请联系乡镇中心")]
    Ops { max: u64 },
    #[error("办件数据超过上限（{}KB），未接收，请联系乡镇中心", .max / 1024)]
    Bytes { max: u64 },
    /// Not Automerge chunks this software sends (the detail is for logs and tests).
    #[error("上传的数据无法解析")]
    Malformed(&'static str),
}

/// Check one ticket's upload (in its wire form, [`pack`]) with the server's stored copy of the
/// ticket (raw, as stored) against [`TICKET_MAX`], before either is loaded. Returns what they
/// hold together. A re-sent change is counted twice, which only matters near the caps.
pub fn check_upload(stored: Option<&[u8]>, packed: &[u8]) -> Result<Size, Limit> {
    let mut meter = Meter::new(TICKET_MAX);
    if let Some(stored) = stored {
        meter.chunks(stored)?;
    }
    pack::measure(packed, &mut meter)?;
    Ok(meter.used())
}

/// Measure concatenated Automerge chunks against `budget`.
pub fn measure(raw: &[u8], budget: Size) -> Result<Size, Limit> {
    let mut meter = Meter::new(budget);
    meter.chunks(raw)?;
    Ok(meter.used())
}

const DOCUMENT: u8 = 0;
const COMPRESSED_CHANGE: u8 = 2;

/// Column specification bits: `id << 4 | deflate << 3 | type`.
const DEFLATE: u32 = 0b1000;
const TYPE: u32 = 0b0111;
const GROUP: u32 = 0;
const DELTA: u32 = 3;
const BOOLEAN: u32 = 4;
const STRING: u32 = 5;
const VALUE: u32 = 7;
/// A document's change-metadata columns that Automerge derives each change's op count from:
/// `max_op` (delta), and the deps (a group of delta-encoded change indices).
const MAX_OP: u32 = 1 << 4 | DELTA;
const DEPS_COUNT: u32 = 4 << 4 | GROUP;
const DEPS_INDEX: u32 = 4 << 4 | DELTA;

/// Counts what chunks hold against a budget, chunk after chunk.
#[derive(Debug)]
pub struct Meter {
    budget: Size,
    used: Size,
}

impl Meter {
    pub fn new(budget: Size) -> Self {
        Self {
            budget,
            used: Size::default(),
        }
    }

    pub fn used(&self) -> Size {
        self.used
    }

    /// Concatenated chunks: documents, changes and compressed changes (a bundle, or anything
    /// else, is refused).
    pub fn chunks(&mut self, raw: &[u8]) -> Result<(), Limit> {
        let mut r = Reader::new(raw);
        while !r.done() {
            let start = r.pos;
            if r.take(4)? != MAGIC {
                return Err(Limit::Malformed("not an Automerge chunk"));
            }
            r.take(4)?;
            let kind = r.byte()?;
            let len = r.len()?;
            let header = r.pos - start;
            let body = r.take(len)?;
            self.add_bytes(header as u64)?;
            match kind {
                DOCUMENT => {
                    self.add_bytes(body.len() as u64)?;
                    self.document(body)?;
                }
                CHANGE => self.change(body)?,
                // Counted as inflated (never less than as sent).
                COMPRESSED_CHANGE => self.change(&self.inflate(body, 0)?)?,
                _ => return Err(Limit::Malformed("chunk type")),
            }
        }
        Ok(())
    }

    /// A change chunk's body: its deps, then the rest.
    fn change(&mut self, body: &[u8]) -> Result<(), Limit> {
        self.add_bytes(body.len() as u64)?;
        let mut r = Reader::new(body);
        let deps = r.len_of(HASH)?;
        r.take(deps.saturating_mul(HASH))?;
        self.change_columns(r.rest())
    }

    /// A change chunk in its packed form: `deps` dependency hashes left out, then `rest`, the
    /// body after them. Counted as the chunk [`pack::unpack`] rebuilds.
    pub(crate) fn packed_change(&mut self, deps: usize, rest: &[u8]) -> Result<(), Limit> {
        let body = (uleb_len(deps as u64) as u64)
            .saturating_add((deps as u64).saturating_mul(HASH as u64))
            .saturating_add(rest.len() as u64);
        self.add_bytes(9 + uleb_len(body) as u64)?;
        self.add_bytes(body)?;
        self.change_columns(rest)
    }

    /// A change's body after its deps: header fields, the op columns (never deflated in a
    /// change: Automerge refuses those), the extra bytes.
    fn change_columns(&mut self, rest: &[u8]) -> Result<(), Limit> {
        let mut r = Reader::new(rest);
        let actor = r.len()?;
        r.take(actor)?;
        r.uleb()?; // seq
        r.uleb()?; // start op
        r.uleb()?; // time (signed; the same bytes)
        let message = r.len()?;
        r.take(message)?;
        let others = r.len_of(1)?;
        for _ in 0..others {
            let actor = r.len()?;
            r.take(actor)?;
        }
        let columns = columns(&mut r)?;
        if columns.iter().any(|&(spec, _)| spec & DEFLATE != 0) {
            return Err(Limit::Malformed("deflated change column"));
        }
        let total = columns
            .iter()
            .try_fold(0usize, |t, &(_, len)| t.checked_add(len));
        let data = r.take(total.ok_or(Limit::Malformed("column lengths"))?)?;
        let mut rows = 0;
        let mut at = 0;
        for (spec, len) in columns {
            let col = &data[at..at + len];
            at += len;
            rows = rows.max(self.column(spec, col)?);
        }
        self.add_ops(rows)
    }

    /// A document: actors, heads, the change and op column layouts, their data (columns may
    /// be deflated), head indices.
    fn document(&mut self, body: &[u8]) -> Result<(), Limit> {
        let mut r = Reader::new(body);
        let actors = r.len_of(1)?;
        for _ in 0..actors {
            let actor = r.len()?;
            r.take(actor)?;
        }
        let heads = r.len_of(HASH)?;
        r.take(heads.saturating_mul(HASH))?;
        let change_cols = columns(&mut r)?;
        let op_cols = columns(&mut r)?;
        let mut specs: Vec<u32> = Vec::new();
        let mut rows = 0;
        let mut meta = ChangeMeta::default();
        for (cols, is_change) in [(change_cols, true), (op_cols, false)] {
            specs.clear();
            for (spec, len) in cols {
                // Automerge looks a column up by its spec: with two alike it could read
                // another one than was measured.
                let plain = spec & !DEFLATE;
                if specs.contains(&plain) {
                    return Err(Limit::Malformed("repeated column"));
                }
                specs.push(plain);
                let raw = r.take(len)?;
                let data = if spec & DEFLATE != 0 {
                    let inflated = self.inflate(raw, raw.len())?;
                    self.add_bytes((inflated.len() as u64).saturating_sub(raw.len() as u64))?;
                    Cow::Owned(inflated)
                } else {
                    Cow::Borrowed(raw)
                };
                rows = rows.max(self.column(plain, &data)?);
                if is_change {
                    meta.keep(plain, data);
                }
            }
        }
        // Head indices: the rest of the body, counted with it.
        self.add_ops(rows.max(meta.declared_ops(rows)?))
    }

    /// Rows of one column (run lengths summed, no run expanded); the bytes it gains once
    /// decoded are counted. Refused as soon as the rows pass what is left of the budget.
    fn column(&mut self, spec: u32, data: &[u8]) -> Result<u64, Limit> {
        let left = self.budget.ops.saturating_sub(self.used.ops);
        let (rows, expanded) = match spec & TYPE {
            VALUE => (0, data.len() as u64),
            BOOLEAN => {
                let mut r = Reader::new(data);
                let mut rows = 0u64;
                while !r.done() {
                    rows = rows.saturating_add(r.uleb()?);
                    if rows > left {
                        return Err(self.ops_over());
                    }
                }
                (rows, rows)
            }
            kind => rle(data, kind == STRING, left).map_err(|e| match e {
                Over::Rows => self.ops_over(),
                Over::Malformed(m) => Limit::Malformed(m),
            })?,
        };
        self.add_bytes(expanded.saturating_sub(data.len() as u64))?;
        Ok(rows)
    }

    /// Inflate deflated bytes, up to what is left of the byte budget plus what of them is
    /// already counted.
    fn inflate(&self, deflated: &[u8], counted: usize) -> Result<Vec<u8>, Limit> {
        let left = self.budget.bytes.saturating_sub(self.used.bytes);
        let cap = left.saturating_add(counted as u64);
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(deflated)
            .take(cap.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|_| Limit::Malformed("deflate"))?;
        if out.len() as u64 > cap {
            return Err(self.bytes_over());
        }
        Ok(out)
    }

    fn add_ops(&mut self, ops: u64) -> Result<(), Limit> {
        self.used.ops = self.used.ops.saturating_add(ops);
        if self.used.ops > self.budget.ops {
            return Err(self.ops_over());
        }
        Ok(())
    }

    fn add_bytes(&mut self, bytes: u64) -> Result<(), Limit> {
        self.used.bytes = self.used.bytes.saturating_add(bytes);
        if self.used.bytes > self.budget.bytes {
            return Err(self.bytes_over());
        }
        Ok(())
    }

    fn ops_over(&self) -> Limit {
        Limit::Ops {
            max: self.budget.ops,
        }
    }

    fn bytes_over(&self) -> Limit {
        Limit::Bytes {
            max: self.budget.bytes,
        }
    }
}

/// A document's change metadata columns that give each change's op count.
#[derive(Default)]
struct ChangeMeta<'a> {
    max_op: Cow<'a, [u8]>,
    deps_count: Cow<'a, [u8]>,
    deps_index: Cow<'a, [u8]>,
}

impl<'a> ChangeMeta<'a> {
    fn keep(&mut self, spec: u32, data: Cow<'a, [u8]>) {
        match spec {
            MAX_OP => self.max_op = data,
            DEPS_COUNT => self.deps_count = data,
            DEPS_INDEX => self.deps_index = data,
            _ => {}
        }
    }

    /// The ops Automerge allocates for while loading the document: per change, its `max_op`
    /// less the greatest `max_op` among its deps, summed. `rows` (every column's, already
    /// within the budget) bounds how many values are decoded.
    fn declared_ops(&self, rows: u64) -> Result<u64, Limit> {
        let max_op = deltas(&self.max_op, rows)?;
        let counts = values(&self.deps_count, rows)?;
        let mut index = deltas(&self.deps_index, rows)?.into_iter();
        let mut total = 0u64;
        for (i, &m) in max_op.iter().enumerate() {
            let n = counts.get(i).copied().unwrap_or(0);
            let mut last = 0;
            for _ in 0..n {
                let dep = index
                    .next()
                    .and_then(|d| usize::try_from(d).ok())
                    .and_then(|d| max_op.get(d))
                    .ok_or(Limit::Malformed("change dependency"))?;
                last = last.max(*dep);
            }
            let own = m
                .checked_sub(last)
                .ok_or(Limit::Malformed("max op below a dependency's"))?;
            total = total.saturating_add(own);
        }
        Ok(total)
    }
}

/// The values of a run-length encoded column without nulls (`n` then a value repeated n
/// times; `-n` then n values), each read by `read`, at most `rows` of them. `what` names the
/// column in the error for a null run.
fn runs<T: Copy>(
    data: &[u8],
    rows: u64,
    what: &'static str,
    read: impl Fn(&mut Reader<'_>) -> Result<T, Malformed>,
) -> Result<Vec<T>, Limit> {
    let mut out = Vec::new();
    let mut r = Reader::new(data);
    while !r.done() {
        let count = r.sleb()?;
        if count == 0 {
            return Err(Limit::Malformed(what));
        }
        let n = count.unsigned_abs();
        if (out.len() as u64).saturating_add(n) > rows {
            return Err(Limit::Malformed("column longer than the others"));
        }
        if count < 0 {
            for _ in 0..n {
                out.push(read(&mut r)?);
            }
        } else {
            let v = read(&mut r)?;
            out.extend(std::iter::repeat_n(v, n as usize));
        }
    }
    Ok(out)
}

/// The values of an unsigned run-length encoded column (no nulls), at most `rows` of them.
fn values(data: &[u8], rows: u64) -> Result<Vec<u64>, Limit> {
    runs(data, rows, "null in a count column", |r| r.uleb())
}

/// The values of a delta column (signed run-length encoded differences, summed), each within
/// what Automerge reads them as (`u32`).
fn deltas(data: &[u8], rows: u64) -> Result<Vec<u64>, Limit> {
    let mut value = 0i64;
    runs(data, rows, "null in a delta column", |r| r.sleb())?
        .into_iter()
        .map(|delta| {
            value = value
                .checked_add(delta)
                .filter(|v| (0..=i64::from(u32::MAX)).contains(v))
                .ok_or(Limit::Malformed("delta out of range"))?;
            Ok(value as u64)
        })
        .collect()
}

enum Over {
    Rows,
    Malformed(&'static str),
}

impl From<Malformed> for Limit {
    fn from(m: Malformed) -> Self {
        Limit::Malformed(m.0)
    }
}

impl From<Malformed> for Over {
    fn from(m: Malformed) -> Self {
        Over::Malformed(m.0)
    }
}

impl From<Limit> for Over {
    fn from(e: Limit) -> Self {
        match e {
            Limit::Malformed(m) => Over::Malformed(m),
            _ => Over::Malformed("truncated"),
        }
    }
}

/// Rows and decoded bytes of a run-length encoded column: runs of one value (`n > 0`, then the
/// value), literal runs (`-n`, then n values), null runs (`0`, then n). Values are LEB128
/// numbers, or length-prefixed strings. A run is counted, never expanded; a literal run is
/// read value by value, so its cost is its bytes.
fn rle(data: &[u8], strings: bool, max_rows: u64) -> Result<(u64, u64), Over> {
    let mut r = Reader::new(data);
    let (mut rows, mut bytes) = (0u64, 0u64);
    let value = |r: &mut Reader<'_>| -> Result<u64, Limit> {
        let start = r.pos;
        if strings {
            let len = r.len()?;
            r.take(len)?;
        } else {
            r.uleb()?;
        }
        Ok((r.pos - start) as u64)
    };
    while !r.done() {
        let count = r.sleb()?;
        if count > 0 {
            let n = count.unsigned_abs();
            let size = value(&mut r)?;
            rows = rows.saturating_add(n);
            bytes = bytes.saturating_add(n.saturating_mul(size));
        } else if count < 0 {
            let n = count.unsigned_abs();
            if n > max_rows.saturating_sub(rows) {
                return Err(Over::Rows);
            }
            for _ in 0..n {
                bytes = bytes.saturating_add(value(&mut r)?);
            }
            rows = rows.saturating_add(n);
        } else {
            let n = r.uleb()?;
            rows = rows.saturating_add(n);
            bytes = bytes.saturating_add(n);
        }
        if rows > max_rows {
            return Err(Over::Rows);
        }
    }
    Ok((rows, bytes))
}

/// A column layout: a count, then each column's spec and data length.
fn columns(r: &mut Reader<'_>) -> Result<Vec<(u32, usize)>, Limit> {
    let n = r.len_of(2)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let spec = u32::try_from(r.uleb()?).map_err(|_| Limit::Malformed("column spec"))?;
        let len = usize::try_from(r.uleb()?).map_err(|_| Limit::Malformed("column length"))?;
        out.push((spec, len));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ObjType, ScalarValue, ROOT};

    fn doc() -> AutoCommit {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(vec![1; 16]));
        doc.put(ROOT, "remarks", "备注").unwrap();
        let events = doc.put_object(ROOT, "events", ObjType::List).unwrap();
        for i in 0..10 {
            doc.insert(&events, i, format!("event {i}")).unwrap();
        }
        doc.commit();
        doc
    }

    fn splice_nulls(doc: &mut AutoCommit, n: usize) {
        let (_, events) = automerge::ReadDoc::get(doc, ROOT, "events")
            .unwrap()
            .unwrap();
        doc.splice(&events, 0, 0, std::iter::repeat_n(ScalarValue::Null, n))
            .unwrap();
        doc.commit();
    }

    #[test]
    fn ops_are_counted_as_automerge_counts_them() {
        let mut doc = doc();
        let changes = doc.save_after(&[]);
        let size = measure(&changes, LOAD_MAX).unwrap();
        // put, make list, 10 inserts.
        assert_eq!(size.ops, 12);
        assert!(size.bytes >= changes.len() as u64);
        // The same history as a document, compressed or not: its ops and its change.
        for saved in [doc.save(), doc.save_nocompress()] {
            let size = measure(&saved, LOAD_MAX).unwrap();
            assert_eq!(size.ops, 12, "{saved:02x?}");
            assert!(size.bytes >= saved.len() as u64);
        }
        // Two chunks add up.
        let two = [changes.clone(), changes].concat();
        assert_eq!(measure(&two, LOAD_MAX).unwrap().ops, 24);
        assert_eq!(measure(&[], LOAD_MAX).unwrap(), Size::default());
    }

    #[test]
    fn a_run_of_a_million_ops_is_refused_without_expanding_it() {
        let mut doc = doc();
        let heads = doc.get_heads();
        splice_nulls(&mut doc, 1_000_000);
        let change = doc.save_after(&heads);
        assert!(change.len() < 200, "{} bytes", change.len());
        assert_eq!(
            measure(&change, LOAD_MAX),
            Err(Limit::Ops { max: LOAD_MAX.ops })
        );
        for saved in [doc.save(), doc.save_nocompress()] {
            assert_eq!(
                measure(&saved, LOAD_MAX),
                Err(Limit::Ops { max: LOAD_MAX.ops })
            );
        }
    }

    #[test]
    fn repeated_text_counts_as_decoded() {
        let mut doc = AutoCommit::new();
        let big = "办".repeat(100_000);
        doc.put(ROOT, "remarks", big.as_str()).unwrap();
        doc.commit();
        // Deflated in the document: a few KB as sent, 300 KB inflated.
        let saved = doc.save();
        assert!(saved.len() < 10_000, "{}", saved.len());
        assert_eq!(
            measure(&saved, TICKET_MAX),
            Err(Limit::Bytes {
                max: MAX_TICKET_BYTES
            })
        );
        assert!(measure(&saved, LOAD_MAX).unwrap().bytes > 300_000);
    }

    #[test]
    fn garbage_and_truncation_are_malformed_never_a_panic() {
        let mut doc = doc();
        for raw in [doc.save_after(&[]), doc.save(), doc.save_nocompress()] {
            for end in 0..raw.len() {
                assert!(measure(&raw[..end], LOAD_MAX).is_err() || end == 0);
            }
            for i in 0..raw.len() {
                for flip in [0x01, 0x40, 0x80, 0xff] {
                    let mut bad = raw.clone();
                    bad[i] ^= flip;
                    let _ = measure(&bad, LOAD_MAX);
                }
            }
        }
        assert_eq!(
            measure(b"not automerge", LOAD_MAX),
            Err(Limit::Malformed("not an Automerge chunk"))
        );
    }
}
