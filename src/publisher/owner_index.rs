//! How the ownership index (which caregiver has each published row) is laid
//! out in the state: rows in blocks, owners as numbers.
//!
//! Why: one sled entry per owned row cost ~150 bytes on disk per row and,
//! for an onboarding snapshot, one sled batch of a million entries, which
//! sled held in ~4 KB of memory per row and spent most of the snapshot's
//! time on (docs/BENCHMARKS.md, "The onboarding snapshot"). A block holds
//! up to `BLOCK_ROWS` rows of one table, sorted by their encoded key bytes,
//! each with its owner's number; the blocks of a table partition the byte
//! order of its keys, and a block is stored under its first key
//! (`O/<table>\0<first key>`), so the block that has (or would have) a key
//! is the last one whose first key is not above it, or the table's first
//! block for a key below every block.
//!
//! A block's bytes: per row, the key's length (LEB128), the key, the
//! owner's number (LEB128). Subscriber numbers are given once and never
//! reused (`sn/<hsa>` and back `sN/<number>`); a caregiver's new epoch
//! retires its number (`State::retire_owner`: its rows have no owner at
//! once, and are dropped from a block when the block is next written);
//! `State::write_owners` is the only writer of blocks, inside a cycle's
//! commit.

/// At most this many rows in a block: a change reads and rewrites one
/// block (about 2 KB), and a million rows are ~8,000 sled entries.
pub const BLOCK_ROWS: usize = 128;

/// The state key prefix of `table`'s blocks.
pub fn table_prefix(table: &str) -> Vec<u8> {
    let mut k = format!("O/{table}").into_bytes();
    k.push(0);
    k
}

/// The state key of `table`'s block whose first key is `first`.
pub fn block_key(table: &str, first: &[u8]) -> Vec<u8> {
    let mut k = table_prefix(table);
    k.extend_from_slice(first);
    k
}

/// The table a block key belongs to.
pub fn table_of(block_key: &[u8]) -> Option<&str> {
    let rest = block_key.strip_prefix(b"O/")?;
    let end = rest.iter().position(|b| *b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A block's bytes, its rows in key order.
pub fn encode<'a>(rows: impl Iterator<Item = (&'a [u8], u32)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, n) in rows {
        put_varint(&mut out, k.len() as u64);
        out.extend_from_slice(k);
        put_varint(&mut out, u64::from(n));
    }
    out
}

/// A block's rows, in key order, borrowed from its bytes; None as for
/// `decode`.
pub fn rows(bytes: &[u8]) -> Option<Vec<(&[u8], u32)>> {
    Some(
        spans(bytes)?
            .into_iter()
            .map(|(at, len, n)| (&bytes[at..at + len], n))
            .collect(),
    )
}

/// A block's rows, in key order; None when the bytes are not a block
/// (damaged state, or keys out of order).
pub fn decode(bytes: &[u8]) -> Option<Vec<(Vec<u8>, u32)>> {
    Some(
        spans(bytes)?
            .into_iter()
            .map(|(at, len, n)| (bytes[at..at + len].to_vec(), n))
            .collect(),
    )
}

/// Where each row's key is in a block's bytes, with its owner: (offset,
/// length, owner's number), in key order; None as for `decode`. For
/// lookups that need no copy of the keys (`State::owners_of`).
pub fn spans(bytes: &[u8]) -> Option<Vec<(usize, usize, u32)>> {
    let mut out: Vec<(usize, usize, u32)> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = usize::try_from(get_varint(bytes, &mut at)?).ok()?;
        let key = bytes.get(at..at.checked_add(len)?)?;
        if out.last().is_some_and(|(a, l, _)| &bytes[*a..a + l] >= key) {
            return None;
        }
        let start = at;
        at += len;
        let n = u32::try_from(get_varint(bytes, &mut at)?).ok()?;
        out.push((start, len, n));
    }
    Some(out)
}

/// A block's rows `old` (in key order) with `changes` (in key order, each
/// key once: the owner's number, or None for a row no longer owned)
/// applied, in key order.
/// (Keys borrowed: from the block's bytes and the changes.)
pub fn merge<'a>(
    old: Vec<(&'a [u8], u32)>,
    changes: &[(&'a [u8], Option<u32>)],
) -> Vec<(&'a [u8], u32)> {
    let mut out = Vec::with_capacity(old.len() + changes.len());
    let mut old = old.into_iter().peekable();
    for (key, n) in changes {
        while let Some(o) = old.next_if(|(k, _)| k < key) {
            out.push(o);
        }
        old.next_if(|(k, _)| k == key);
        if let Some(n) = n {
            out.push((*key, *n));
        }
    }
    out.extend(old);
    out
}

/// Bytes in the state that are not an ownership index block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotABlock;

/// The owner number of `key` in a block's bytes, without decoding the rest
/// into a map.
pub fn find(bytes: &[u8], key: &[u8]) -> Result<Option<u32>, NotABlock> {
    let mut at = 0;
    while at < bytes.len() {
        let len = get_varint(bytes, &mut at)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(NotABlock)?;
        let k = at
            .checked_add(len)
            .and_then(|end| bytes.get(at..end))
            .ok_or(NotABlock)?;
        at += len;
        let n = get_varint(bytes, &mut at)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(NotABlock)?;
        match k.cmp(key) {
            std::cmp::Ordering::Equal => return Ok(Some(n)),
            std::cmp::Ordering::Greater => return Ok(None),
            std::cmp::Ordering::Less => {}
        }
    }
    Ok(None)
}

/// Rows (in key order) split into blocks of at most `BLOCK_ROWS`, each
/// with its first key.
pub fn split(rows: &[(&[u8], u32)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    rows.chunks(BLOCK_ROWS)
        .map(|c| (c[0].0.to_vec(), encode(c.iter().copied())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn blocks_round_trip_and_find_keys() {
        let mut rows = BTreeMap::new();
        for i in 0..300u32 {
            rows.insert(vec![0x82, (i >> 8) as u8, i as u8], i * 1000);
        }
        rows.insert(vec![], 7);
        rows.insert(vec![9; 200], u32::MAX);
        let rows: Vec<(Vec<u8>, u32)> = rows.into_iter().collect();
        let borrowed: Vec<(&[u8], u32)> = rows.iter().map(|(k, n)| (k.as_slice(), *n)).collect();
        let blocks = split(&borrowed);
        assert_eq!(blocks.len(), 3);
        let mut back = Vec::new();
        for (first, bytes) in &blocks {
            let b = decode(bytes).unwrap();
            assert_eq!(&b[0].0, first);
            assert!(b.len() <= BLOCK_ROWS);
            for (k, n) in &b {
                assert_eq!(find(bytes, k), Ok(Some(*n)));
            }
            back.extend(b);
        }
        assert_eq!(back, rows);
        assert_eq!(find(&blocks[0].1, &[0x82, 0, 0, 0]), Ok(None));
        // Damaged bytes are an error, not a panic or a wrong answer.
        assert!(decode(&[5, 1]).is_none());
        assert_eq!(find(&[5, 1], &[1]), Err(NotABlock));
        assert!(decode(&[0x80; 12]).is_none());
        // Keys out of order are damage too.
        let mut twisted = encode([(&[2u8][..], 1u32)].into_iter());
        twisted.extend(encode([(&[1u8][..], 1u32)].into_iter()));
        assert!(decode(&twisted).is_none());
    }

    #[test]
    fn merge_applies_gains_moves_and_losses_in_order() {
        let old: Vec<(&[u8], u32)> = vec![(&[2], 1), (&[4], 1), (&[6], 2)];
        let changes: Vec<(&[u8], Option<u32>)> = vec![
            (&[1], Some(3)),
            (&[4], Some(2)),
            (&[5], None),
            (&[6], None),
            (&[9], Some(1)),
        ];
        assert_eq!(
            merge(old, &changes),
            vec![(&[1][..], 3), (&[2][..], 1), (&[4][..], 2), (&[9][..], 1)]
        );
        assert_eq!(merge(Vec::new(), &[(&[1], None)]), Vec::new());
    }

    #[test]
    fn block_keys_name_their_table() {
        let k = block_key("dbo.Besok", &[0x81, 0x01]);
        assert_eq!(table_of(&k), Some("dbo.Besok"));
        assert!(k.starts_with(&table_prefix("dbo.Besok")));
        assert!(!k.starts_with(&table_prefix("dbo.Beso")));
    }
}
