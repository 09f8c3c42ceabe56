//! Compact wire form of concatenated Automerge chunks. A small sync is mostly change chunks
//! whose 32-byte dependency hashes neither compress nor carry news (the receiver holds those
//! changes, or gets them earlier in the same message), so [`pack`] keeps only a 3-byte prefix
//! of each and [`unpack`] rebuilds the exact original bytes, letting the chunk's own checksum
//! pick the right hash when a prefix is ambiguous. Everything that is not a plain change
//! (documents, compressed changes) travels as is.
//!
//! Packed form, entries until the end:
//! - `0`, uLEB length, a chunk byte for byte;
//! - `1`, checksum (4 bytes), uLEB number of deps, 3-byte prefix of each dep in order, uLEB
//!   length of the rest of the body, the rest of the body: a change chunk (type 1).
//!
//! Automerge chunk: magic (4) | checksum (4) | type (1) | uLEB body length | body; a change's
//! body starts with uLEB number of deps and the 32-byte hashes. Its hash is SHA-256 over
//! type | uLEB length | body, and the checksum is that hash's first 4 bytes.

use std::collections::{HashMap, HashSet};

use automerge::ChangeHash;
use ring::digest;

use crate::doc::limits::{Limit, Meter, LOAD_MAX};
use crate::reader::{write_uleb, Malformed, Reader};

/// An Automerge chunk's magic bytes, and the type byte of a change chunk.
pub(crate) const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
pub(crate) const CHANGE: u8 = 1;
const TAG_CHUNK: u8 = 0;
const TAG_CHANGE: u8 = 1;
/// Bytes of a change hash.
pub(crate) const HASH: usize = 32;
const PREFIX: usize = 3;
/// Most deps one packed change may have (a merge of that many concurrent heads); a change
/// with more travels as is, so this only bounds what a peer can make the receiver do.
pub const MAX_DEPS: usize = 256;
/// Most dependency combinations tried beyond the first, for one change and for all the
/// changes of one message together: each try hashes the whole change, so a message of
/// changes each as ambiguous as one may be would hash some 680 times its size (11 GB from
/// 16 MiB). A real collision of 3-byte prefixes among one ticket's few dozen changes is rare
/// (about one message in 10,000 has one), and takes one more try.
pub const MAX_TRIES: usize = 64;
/// Most bytes one message unpacks to: what any replica loads of one ticket at once
/// ([`LOAD_MAX`]), at most eleven times the packed size (a 3-byte prefix becomes 32 bytes).
pub const MAX_UNPACKED: usize = LOAD_MAX.bytes as usize;

/// Why changes could not be packed or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    #[error("packed changes are not valid: {0}")]
    Malformed(&'static str),
    /// A dependency is neither held by the receiver nor earlier in the message: ask for the
    /// whole ticket (whose changes carry all their deps within the message).
    #[error("changes build on history this copy does not have")]
    MissingHistory,
    /// Dependency prefixes that would take more than [`MAX_TRIES`] extra tries to resolve in
    /// one message, or that resolve more than one way.
    #[error("dependency prefixes too ambiguous")]
    Ambiguous,
    /// The changes would unpack to more than [`MAX_UNPACKED`] bytes.
    #[error("packed changes unpack to more than {MAX_UNPACKED} bytes")]
    TooLarge,
}

impl From<Malformed> for PackError {
    fn from(m: Malformed) -> Self {
        PackError::Malformed(m.0)
    }
}

type Prefix = [u8; PREFIX];

/// Compact form of concatenated Automerge chunks.
///
/// A change keeps its full deps (travels as is) when one of them could be inside a document
/// or compressed chunk of the same message, whose hashes [`unpack`] cannot see. Bytes that
/// are not whole chunks are [`PackError::Malformed`].
pub fn pack(raw: &[u8]) -> Result<Vec<u8>, PackError> {
    let chunks = split(raw)?;
    let opaque = chunks.iter().any(|c| c.kind != CHANGE);
    let in_message: HashSet<[u8; HASH]> = chunks.iter().filter_map(|c| c.hash).collect();
    let mut earlier = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for chunk in &chunks {
        let packable = chunk.plain_change().filter(|change| {
            change
                .deps
                .iter()
                .all(|dep| earlier.contains(dep) || (!opaque && !in_message.contains(dep)))
        });
        match packable {
            Some(change) => {
                out.push(TAG_CHANGE);
                out.extend_from_slice(&chunk.checksum);
                write_uleb(&mut out, change.deps.len() as u64);
                for dep in &change.deps {
                    out.extend_from_slice(&dep[..PREFIX]);
                }
                write_uleb(&mut out, change.rest.len() as u64);
                out.extend_from_slice(change.rest);
            }
            None => {
                out.push(TAG_CHUNK);
                write_uleb(&mut out, chunk.bytes.len() as u64);
                out.extend_from_slice(chunk.bytes);
            }
        }
        if let Some(hash) = chunk.hash {
            earlier.insert(hash);
        }
    }
    Ok(out)
}

/// Restore the exact original bytes. `known` are the change hashes the receiver holds for
/// this document (any order); deps may also refer to earlier changes in the same packed
/// message.
///
/// The output is at most about eleven times the input (a 3-byte prefix becomes 32 bytes), and
/// never over [`MAX_UNPACKED`] bytes ([`PackError::TooLarge`]); ambiguous prefixes take at
/// most [`MAX_TRIES`] extra tries in all ([`PackError::Ambiguous`]).
pub fn unpack(packed: &[u8], known: &[ChangeHash]) -> Result<Vec<u8>, PackError> {
    let mut candidates = Candidates::default();
    for hash in known {
        candidates.add(hash.0);
    }
    let mut out = Vec::with_capacity(packed.len().saturating_mul(2).min(MAX_UNPACKED));
    let mut tries_left = MAX_TRIES;
    let mut r = Reader::new(packed);
    while !r.done() {
        match r.byte()? {
            TAG_CHUNK => {
                let len = r.len()?;
                if out.len().saturating_add(len) > MAX_UNPACKED {
                    return Err(PackError::TooLarge);
                }
                let bytes = r.take(len)?;
                let chunk = split(bytes)?;
                let [chunk] = chunk.as_slice() else {
                    return Err(PackError::Malformed("not one chunk"));
                };
                if let Some(hash) = chunk.hash {
                    candidates.add(hash);
                }
                out.extend_from_slice(bytes);
            }
            TAG_CHANGE => {
                let checksum: [u8; 4] = r.array()?;
                let n = r.len()?;
                if n > MAX_DEPS {
                    return Err(PackError::Malformed("too many deps"));
                }
                let prefixes = r.take(n.saturating_mul(PREFIX))?;
                let rest_len = r.len()?;
                let rest = r.take(rest_len)?;
                // The chunk as rebuilt: header (at most 19 bytes), deps, the rest.
                let rebuilt = 19 + n * HASH + rest.len();
                if out.len().saturating_add(rebuilt) > MAX_UNPACKED {
                    return Err(PackError::TooLarge);
                }
                let hash = rebuild(
                    &mut out,
                    checksum,
                    prefixes,
                    rest,
                    &candidates,
                    &mut tries_left,
                )?;
                candidates.add(hash);
            }
            _ => return Err(PackError::Malformed("unknown entry")),
        }
    }
    Ok(out)
}

/// Count what packed changes hold ([`crate::doc::limits`]) without unpacking them: a packed
/// change is counted as the chunk [`unpack`] would rebuild, so a server can refuse an upload
/// before resolving, hashing or loading anything of it.
pub fn measure(packed: &[u8], meter: &mut Meter) -> Result<(), Limit> {
    let bad = |_| Limit::Malformed("packed changes");
    let mut r = Reader::new(packed);
    while !r.done() {
        match r.byte().map_err(bad)? {
            TAG_CHUNK => {
                let len = r.len().map_err(bad)?;
                meter.chunks(r.take(len).map_err(bad)?)?;
            }
            TAG_CHANGE => {
                r.array::<4>().map_err(bad)?;
                let n = r.len().map_err(bad)?;
                if n > MAX_DEPS {
                    return Err(Limit::Malformed("too many deps"));
                }
                r.take(n.saturating_mul(PREFIX)).map_err(bad)?;
                let rest_len = r.len().map_err(bad)?;
                meter.packed_change(n, r.take(rest_len).map_err(bad)?)?;
            }
            _ => return Err(Limit::Malformed("packed changes")),
        }
    }
    Ok(())
}

/// Append the change chunk whose deps resolve `prefixes` so that its checksum matches, and
/// return its hash. Tries beyond the first are taken from `tries_left`, the message's budget.
fn rebuild(
    out: &mut Vec<u8>,
    checksum: [u8; 4],
    prefixes: &[u8],
    rest: &[u8],
    candidates: &Candidates,
    tries_left: &mut usize,
) -> Result<[u8; HASH], PackError> {
    let mut options = Vec::with_capacity(prefixes.len() / PREFIX);
    let mut tries = 1usize;
    for prefix in prefixes.chunks_exact(PREFIX) {
        let found = candidates.get(prefix);
        if found.is_empty() {
            return Err(PackError::MissingHistory);
        }
        tries = tries.saturating_mul(found.len());
        options.push(found);
    }
    // Charged before any is tried: a message cannot hash more than its budget allows.
    *tries_left = tries_left
        .checked_sub(tries - 1)
        .ok_or(PackError::Ambiguous)?;
    let mut body = Vec::with_capacity(10 + options.len() * HASH + rest.len());
    write_uleb(&mut body, options.len() as u64);
    let deps_at = body.len();
    for found in &options {
        body.extend_from_slice(&found[0]);
    }
    body.extend_from_slice(rest);
    // Try every combination (odometer over the choices) and insist on exactly one match, so
    // a 4-byte checksum colliding by chance cannot pick the wrong history silently.
    let mut choice = vec![0usize; options.len()];
    let mut matched: Option<(Vec<usize>, [u8; HASH])> = None;
    loop {
        for (i, found) in options.iter().enumerate() {
            let at = deps_at + i * HASH;
            body[at..at + HASH].copy_from_slice(&found[choice[i]]);
        }
        let hash = chunk_hash(CHANGE, &body);
        if hash[..4] == checksum {
            if matched.is_some() {
                return Err(PackError::Ambiguous);
            }
            matched = Some((choice.clone(), hash));
        }
        if !advance(&mut choice, &options) {
            break;
        }
    }
    let Some((choice, hash)) = matched else {
        return Err(PackError::Malformed("checksum does not match"));
    };
    for (i, found) in options.iter().enumerate() {
        let at = deps_at + i * HASH;
        body[at..at + HASH].copy_from_slice(&found[choice[i]]);
    }
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&checksum);
    out.push(CHANGE);
    write_uleb(out, body.len() as u64);
    out.extend_from_slice(&body);
    Ok(hash)
}

/// Next combination; false after the last.
fn advance(choice: &mut [usize], options: &[&[[u8; HASH]]]) -> bool {
    for (c, found) in choice.iter_mut().zip(options) {
        *c += 1;
        if *c < found.len() {
            return true;
        }
        *c = 0;
    }
    false
}

/// Hashes a dep prefix may stand for.
#[derive(Default)]
struct Candidates {
    by_prefix: HashMap<Prefix, Vec<[u8; HASH]>>,
    all: HashSet<[u8; HASH]>,
}

impl Candidates {
    fn add(&mut self, hash: [u8; HASH]) {
        if self.all.insert(hash) {
            let mut prefix = [0u8; PREFIX];
            prefix.copy_from_slice(&hash[..PREFIX]);
            self.by_prefix.entry(prefix).or_default().push(hash);
        }
    }

    fn get(&self, prefix: &[u8]) -> &[[u8; HASH]] {
        <Prefix>::try_from(prefix)
            .ok()
            .and_then(|p| self.by_prefix.get(&p))
            .map_or(&[], Vec::as_slice)
    }
}

/// One chunk of the input.
struct Chunk<'a> {
    /// The whole chunk, header included.
    bytes: &'a [u8],
    checksum: [u8; 4],
    kind: u8,
    body: &'a [u8],
    /// The length was written in its shortest form (so rebuilding it gives the same bytes).
    minimal_len: bool,
    /// A change's hash (computed as Automerge does, whatever its checksum says).
    hash: Option<[u8; HASH]>,
}

/// A change chunk that [`unpack`] can rebuild byte for byte.
struct PlainChange<'a> {
    deps: Vec<[u8; HASH]>,
    rest: &'a [u8],
}

impl<'a> Chunk<'a> {
    fn plain_change(&self) -> Option<PlainChange<'a>> {
        if !self.minimal_len || self.hash?[..4] != self.checksum {
            return None;
        }
        let mut r = Reader::new(self.body);
        let (n, minimal) = r.uleb_minimal().ok()?;
        let n = usize::try_from(n).ok().filter(|&n| n <= MAX_DEPS)?;
        if !minimal {
            return None;
        }
        let deps = r
            .take(n.checked_mul(HASH)?)
            .ok()?
            .chunks_exact(HASH)
            .filter_map(|h| <[u8; HASH]>::try_from(h).ok())
            .collect();
        Some(PlainChange {
            deps,
            rest: r.rest(),
        })
    }
}

/// Split concatenated chunks; anything else is malformed.
fn split(raw: &[u8]) -> Result<Vec<Chunk<'_>>, PackError> {
    let mut chunks = Vec::new();
    let mut r = Reader::new(raw);
    while !r.done() {
        let start = r.pos;
        if r.array::<4>()? != MAGIC {
            return Err(PackError::Malformed("not an Automerge chunk"));
        }
        let checksum = r.array()?;
        let kind = r.byte()?;
        let (len, minimal_len) = r.uleb_minimal()?;
        let len = usize::try_from(len).map_err(|_| PackError::Malformed("truncated"))?;
        let body = r.take(len)?;
        chunks.push(Chunk {
            bytes: &raw[start..r.pos],
            checksum,
            kind,
            body,
            minimal_len,
            hash: (kind == CHANGE).then(|| chunk_hash(CHANGE, body)),
        });
    }
    Ok(chunks)
}

/// SHA-256 over type | uLEB length | body, as Automerge hashes a chunk.
fn chunk_hash(kind: u8, body: &[u8]) -> [u8; HASH] {
    let mut header = Vec::with_capacity(11);
    header.push(kind);
    write_uleb(&mut header, body.len() as u64);
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&header);
    ctx.update(body);
    let mut hash = [0u8; HASH];
    hash.copy_from_slice(ctx.finish().as_ref());
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ROOT};
    use proptest::prelude::*;

    fn event(i: usize) -> String {
        format!(
            r#"{{"kind":"supplement_provided","at":"2024-05-{:02}T10:{:02}:00+08:00","by":"agent:010101:1","materials":["户口簿"],"note":"第{i}次"}}"#,
            i % 28 + 1,
            i % 60
        )
    }

    fn actor(n: u8) -> ActorId {
        ActorId::from(vec![n; 16])
    }

    /// A ticket-like document with an `events` list.
    fn ticket(n: u8) -> AutoCommit {
        let mut doc = AutoCommit::new().with_actor(actor(n));
        doc.put(ROOT, "number", "010101000015").unwrap();
        let events = doc.put_object(ROOT, "events", ObjType::List).unwrap();
        doc.insert(&events, 0, event(0)).unwrap();
        doc.commit();
        doc
    }

    fn append(doc: &mut AutoCommit, i: usize) {
        let (_, events) = doc.get(ROOT, "events").unwrap().unwrap();
        let len = doc.length(&events);
        doc.insert(&events, len, event(i)).unwrap();
        doc.commit();
    }

    fn hashes(doc: &mut AutoCommit) -> Vec<ChangeHash> {
        doc.get_changes(&[]).iter().map(|c| c.hash()).collect()
    }

    /// Three actors, concurrent changes merged, more on top; also the first heads and the
    /// three merged ones.
    fn history() -> (AutoCommit, Vec<ChangeHash>, Vec<ChangeHash>) {
        let mut a = ticket(1);
        let mut b = a.fork().with_actor(actor(2));
        let mut c = a.fork().with_actor(actor(3));
        let base = a.get_heads();
        append(&mut a, 1);
        append(&mut b, 2);
        append(&mut c, 3);
        a.merge(&mut b).unwrap();
        a.merge(&mut c).unwrap();
        let merged = a.get_heads();
        append(&mut a, 4);
        (a, base, merged)
    }

    fn round_trip(raw: &[u8], known: &[ChangeHash]) -> Vec<u8> {
        let packed = pack(raw).unwrap();
        assert_eq!(unpack(&packed, known).unwrap(), raw);
        packed
    }

    /// A receiver holding the changes of `doc` that `heads` cover.
    fn receiver_at(doc: &mut AutoCommit, heads: &[ChangeHash]) -> AutoCommit {
        let missing: HashSet<ChangeHash> =
            doc.get_changes(heads).iter().map(|c| c.hash()).collect();
        let have: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .filter(|c| !missing.contains(&c.hash()))
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let mut peer = AutoCommit::new().with_actor(actor(7));
        peer.load_incremental(&have).unwrap();
        assert_eq!(peer.get_heads(), heads);
        peer
    }

    #[test]
    fn changes_round_trip_byte_for_byte() {
        let (mut doc, base, _) = history();
        // The merge change depends on three concurrent ones.
        assert!(doc.get_changes(&[]).iter().any(|c| c.deps().len() == 3));

        // Whole history, nothing known: every dep is earlier in the message.
        let whole = doc.save_after(&[]);
        let packed = round_trip(&whole, &[]);
        assert!(
            packed.len() + 29 * 5 <= whole.len(),
            "{} {}",
            packed.len(),
            whole.len()
        );

        // What a receiver at `base` lacks, against what it holds (in any order).
        let mut peer = receiver_at(&mut doc, &base);
        let mut known = hashes(&mut peer);
        known.reverse();
        let raw = doc.save_after(&base);
        let packed = round_trip(&raw, &known);
        peer.load_incremental(&unpack(&packed, &known).unwrap())
            .unwrap();
        assert_eq!(peer.get_heads(), doc.get_heads());

        // Known hashes beyond what the deps need, or repeated, change nothing.
        let mut more = hashes(&mut doc);
        more.extend(hashes(&mut doc));
        assert_eq!(unpack(&packed, &more).unwrap(), raw);
        assert!(pack(&[]).unwrap().is_empty());
        assert!(unpack(&[], &[]).unwrap().is_empty());
    }

    #[test]
    fn documents_pass_through() {
        let (mut doc, _, _) = history();
        let saved = doc.save();
        let packed = round_trip(&saved, &[]);
        assert_eq!(packed.len(), saved.len() + 1 + uleb_len(saved.len()));
        // A document followed by a change on top of it: the change keeps its deps, which
        // unpack could not find inside the document.
        let heads = doc.get_heads();
        append(&mut doc, 5);
        let mut raw = saved.clone();
        raw.extend(doc.save_after(&heads));
        round_trip(&raw, &[]);
        let mut loaded = AutoCommit::load(&unpack(&pack(&raw).unwrap(), &[]).unwrap()).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads());
        // Uncompressed document too.
        round_trip(&doc.save_nocompress(), &[]);
    }

    fn uleb_len(n: usize) -> usize {
        let mut v = Vec::new();
        write_uleb(&mut v, n as u64);
        v.len()
    }

    #[test]
    fn unknown_dep_is_missing_history() {
        let (mut doc, base, _) = history();
        let packed = pack(&doc.save_after(&base)).unwrap();
        assert!(matches!(
            unpack(&packed, &[]),
            Err(PackError::MissingHistory)
        ));
        // Knowing only part of the base is not enough either.
        let mut peer = receiver_at(&mut doc, &base);
        let known = hashes(&mut peer);
        let partial: Vec<_> = known
            .iter()
            .copied()
            .filter(|h| !base.contains(h))
            .collect();
        assert!(matches!(
            unpack(&packed, &partial),
            Err(PackError::MissingHistory)
        ));
    }

    #[test]
    fn prefix_collision_is_resolved_by_the_checksum() {
        let (mut doc, base, _) = history();
        let mut peer = receiver_at(&mut doc, &base);
        let raw = doc.save_after(&base);
        let packed = pack(&raw).unwrap();
        let mut known = Vec::new();
        for (i, real) in hashes(&mut peer).into_iter().enumerate() {
            // A decoy sharing the real hash's first 3 bytes, listed before it.
            let mut fake = real;
            fake.0[PREFIX..].iter_mut().for_each(|b| *b = !*b);
            fake.0[HASH - 1] ^= i as u8;
            known.push(fake);
            known.push(real);
        }
        assert_eq!(unpack(&packed, &known).unwrap(), raw);
        // Only decoys: no combination matches the checksum.
        let decoys: Vec<_> = known.iter().copied().step_by(2).collect();
        assert!(matches!(
            unpack(&packed, &decoys),
            Err(PackError::Malformed(_))
        ));
    }

    #[test]
    fn combinations_are_bounded() {
        let (mut doc, _, merged) = history();
        assert_eq!(merged.len(), 3);
        let mut peer = receiver_at(&mut doc, &merged);
        let raw = doc.save_after(&merged);
        let packed = pack(&raw).unwrap();
        let mut with_decoys = |n: u8| {
            let mut known = hashes(&mut peer);
            for real in &merged {
                for i in 1..n {
                    let mut fake = *real;
                    fake.0[HASH - 1] ^= i;
                    known.push(fake);
                }
            }
            known
        };
        // Four candidates for each of three deps: 64 tries, found.
        assert_eq!(unpack(&packed, &with_decoys(4)).unwrap(), raw);
        // Five each: 125 tries, refused.
        assert!(matches!(
            unpack(&packed, &with_decoys(5)),
            Err(PackError::Ambiguous)
        ));
    }

    #[test]
    fn damage_gives_an_error_not_a_panic() {
        let (mut doc, base, _) = history();
        let mut peer = receiver_at(&mut doc, &base);
        let known = hashes(&mut peer);
        for raw in [doc.save_after(&base), doc.save_after(&[])] {
            let packed = pack(&raw).unwrap();
            for i in 0..packed.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut bad = packed.clone();
                    bad[i] ^= flip;
                    assert!(unpack(&bad, &known).is_err(), "byte {i} ^ {flip:#x}");
                }
            }
            for end in 0..packed.len() {
                assert!(unpack(&packed[..end], &known).map_or(true, |out| out != raw));
            }
            // Damaged input to pack travels as is (its checksum no longer matches) or is
            // refused, never mangled.
            for i in 0..raw.len() {
                let mut bad = raw.clone();
                bad[i] ^= 0x01;
                if let Ok(packed) = pack(&bad) {
                    // A damaged change has another hash, so one built on it is missing a dep.
                    match unpack(&packed, &known) {
                        Ok(out) => assert_eq!(out, bad, "byte {i}"),
                        Err(e) => assert!(matches!(e, PackError::MissingHistory), "byte {i}: {e}"),
                    }
                }
            }
        }
    }

    #[test]
    fn an_incremental_event_shrinks_by_its_dep_hash() {
        let mut tablet = ticket(1);
        let mut township = AutoCommit::load(&tablet.save())
            .unwrap()
            .with_actor(actor(2));
        let before = township.get_heads();
        append(&mut township, 1);
        let raw = township.save_after(&before);
        assert_eq!(township.get_changes(&before)[0].deps().len(), 1);
        let known = hashes(&mut tablet);
        let packed = round_trip(&raw, &known);
        assert!(
            packed.len() + 28 <= raw.len(),
            "{} -> {}",
            raw.len(),
            packed.len()
        );
    }

    /// A packed whole history with three actors and the hashes it holds, made once.
    fn sample() -> &'static (Vec<u8>, Vec<ChangeHash>) {
        static SAMPLE: std::sync::OnceLock<(Vec<u8>, Vec<ChangeHash>)> = std::sync::OnceLock::new();
        SAMPLE.get_or_init(|| {
            let (mut doc, base, _) = history();
            let mut peer = receiver_at(&mut doc, &base);
            let mut packed = pack(&doc.save_after(&base)).unwrap();
            packed.extend(pack(&doc.save()).unwrap());
            (packed, hashes(&mut peer))
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = pack(&bytes);
            let _ = unpack(&bytes, &[]);
            let mut chunk = MAGIC.to_vec();
            chunk.extend(&bytes);
            if let Ok(packed) = pack(&chunk) {
                prop_assert_eq!(unpack(&packed, &[]).ok(), Some(chunk));
            }
        }

        #[test]
        fn damaged_messages_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (mut packed, known) = sample().clone();
            for (at, value) in edits {
                let at = at % packed.len();
                packed[at] = value;
            }
            packed.extend(tail);
            let _ = unpack(&packed, &known);
        }
    }
}
