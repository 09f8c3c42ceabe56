//! What a Daiban replica does with bytes from a peer, run by the fuzz targets and by
//! `agent-core/tests/hostile_input.rs` (which includes this file), so CI and fuzzing take the
//! same path. Every step may fail; none may panic, hang or allocate without bound.

use agent_core::doc::limits::check_upload;
use agent_core::doc::TicketDoc;
use agent_core::sync::pack::unpack;
use agent_core::sync::wire;
use automerge::ActorId;

/// The server's stored copy of a ticket that uploads are applied to, written with the seeds
/// (`cargo run -p agent-core --example fuzz_seeds`), which build on it.
pub const BASE_TICKET: &[u8] = include_bytes!("../seeds/base_ticket.automerge");

/// `decode_request` target. The first byte says what the rest is: even, a body as posted
/// to `/v1/sync` (the message, then its signature, which the server checks only after
/// decoding: decoding is what anyone can reach); odd, the inflated message, compressed here
/// as a client would, so that mutations reach the message and the changes in it, not only
/// the zstd decoder. Decoded as a request (server) and as a response (tablet); each ticket's
/// changes are imported.
pub fn decode_request(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let framed;
    let (request, body) = if mode % 2 == 0 {
        let request = wire::split_signature(rest).map_or(&[][..], |(frame, _)| frame);
        (request, rest)
    } else {
        match frame(rest) {
            Some(f) => {
                framed = f;
                (&framed[..], &framed[..])
            }
            None => return,
        }
    };
    if let Ok(req) = wire::decode_request(request) {
        for dc in &req.changes {
            import_changes(&dc.bytes);
        }
    }
    if let Ok(resp) = wire::decode_response(body) {
        for dc in &resp.changes {
            import_changes(&dc.bytes);
        }
    }
}

/// `import_changes` target: one ticket's packed changes as sync-server's `check` takes them
/// (measured against the per-ticket caps; then, as a first upload: unpack against nothing,
/// load, read; otherwise applied to the stored copy, read, the new changes taken out), and
/// the same bytes as a whole Automerge document.
pub fn import_changes(packed: &[u8]) {
    let actor = ActorId::from(vec![0x5a; 16]);
    if check_upload(None, packed).is_ok() {
        if let Ok(raw) = unpack(packed, &[]) {
            if let Ok(doc) = TicketDoc::load(&raw, &actor) {
                let _ = doc.read();
            }
        }
    }
    if check_upload(Some(BASE_TICKET), packed).is_ok() {
        if let Ok(mut doc) = TicketDoc::load(BASE_TICKET, &actor) {
            let heads = doc.heads();
            if doc.apply_packed(packed).is_ok() && doc.read().is_ok() {
                let _ = doc.changes_since(&heads);
            }
        }
    }
    if let Ok(doc) = TicketDoc::load(packed, &actor) {
        let _ = doc.read();
    }
}

/// A message as `wire::encode` frames it (magicless zstd with the shared dictionary, no
/// dictionary id or size), at a fast level.
pub fn frame(raw: &[u8]) -> Option<Vec<u8>> {
    use zstd::zstd_safe::{CParameter, FrameFormat};
    let mut c = zstd::bulk::Compressor::with_dictionary(1, wire::DICTIONARY).ok()?;
    c.set_parameter(CParameter::Format(FrameFormat::Magicless))
        .ok()?;
    c.set_parameter(CParameter::DictIdFlag(false)).ok()?;
    c.set_parameter(CParameter::ContentSizeFlag(false)).ok()?;
    c.compress(raw).ok()
}
