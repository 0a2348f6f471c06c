//! Hash-slot arithmetic: the key → slot function, slot-list parsing (`"0 2 4-7"`)
//! and compact range formatting (`0-5460,5462`).

use anyhow::{bail, Context, Result};

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// The hash slot of a key, with Redis's `{hash tag}` rule.
pub fn slot_of(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOT_COUNT
}

/// Every slot in order, so that a range of slots is a slice (see [`slot_range`]).
static ALL_SLOTS: [u16; SLOT_COUNT as usize] = {
    let mut all = [0u16; SLOT_COUNT as usize];
    let mut i = 0;
    while i < all.len() {
        all[i] = i as u16;
        i += 1;
    }
    all
};

/// The slots `first..=last` (empty when `first > last`; capped at the last slot).
pub fn slot_range(first: u16, last: u16) -> &'static [u16] {
    let end = usize::from(last).saturating_add(1).min(ALL_SLOTS.len());
    ALL_SLOTS.get(usize::from(first)..end).unwrap_or(&[])
}

/// Appends the slots `first..=last` to `slots`; false when they do not all come
/// after the slots already there (the list then needs [`sort_slots`]).
pub fn extend_range(slots: &mut Vec<u16>, first: u16, last: u16) -> bool {
    let in_order = slots.last().is_none_or(|&l| l < first);
    slots.extend_from_slice(slot_range(first, last));
    in_order
}

/// Sorts and de-duplicates `slots`.
pub fn sort_slots(slots: &mut Vec<u16>) {
    slots.sort_unstable();
    slots.dedup();
}

/// Checks that a number is a valid slot.
pub fn check_slot(slot: i64) -> Result<u16> {
    if !(0..SLOT_COUNT as i64).contains(&slot) {
        bail!("slot {slot} is out of range 0..16383");
    }
    Ok(slot as u16)
}

/// Parses slot lists such as `"0 2 4-7"` or `"0,2,4-7"` (several arguments may be
/// joined). Returns sorted, de-duplicated slots.
pub fn parse_slot_list<S: AsRef<str>>(parts: &[S]) -> Result<Vec<u16>> {
    let mut slots = Vec::new();
    // Ranges listed in order (the usual case) need no sorting.
    let mut in_order = true;
    for part in parts {
        for item in part
            .as_ref()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let bad = || format!("malformed slot list item '{item}': expected SLOT or FIRST-LAST");
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (
                    a.parse::<i64>().with_context(bad)?,
                    b.parse::<i64>().with_context(bad)?,
                ),
                None => {
                    let s = item.parse::<i64>().with_context(bad)?;
                    (s, s)
                }
            };
            let (first, last) = (check_slot(first)?, check_slot(last)?);
            if first > last {
                bail!("malformed slot range '{item}': {first} is greater than {last}");
            }
            in_order &= extend_range(&mut slots, first, last);
        }
    }
    if slots.is_empty() {
        bail!("empty slot list: give slots such as '0 2 4-7'");
    }
    if !in_order {
        sort_slots(&mut slots);
    }
    Ok(slots)
}

/// Groups sorted slots into inclusive `(first, last)` ranges.
pub fn to_ranges(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for &s in slots {
        match ranges.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(s) => *last = s,
            _ => ranges.push((s, s)),
        }
    }
    ranges
}

/// Formats sorted slots compactly: `0-5460,5462`. Empty gives `-`.
pub fn format_ranges(slots: &[u16]) -> String {
    if slots.is_empty() {
        return "-".into();
    }
    to_ranges(slots)
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits 16384 slots among `n` parts in order, as evenly as possible: earlier parts
/// get the extra slot (3 parts: 5462/5461/5461).
pub fn split_evenly(n: usize) -> Vec<Vec<u16>> {
    let mut out = Vec::with_capacity(n);
    let mut next = 0u32;
    for i in 0..n as u32 {
        let count = SLOT_COUNT as u32 / n as u32 + u32::from(i < SLOT_COUNT as u32 % n as u32);
        out.push((next..next + count).map(|s| s as u16).collect());
        next += count;
    }
    out
}

/// Serde helpers that write a slot list as range strings (`["0-5460", "5462"]`).
pub mod ranges_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes sorted slots as range strings.
    pub fn serialize<S: Serializer>(slots: &[u16], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(super::to_ranges(slots).iter().map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        }))
    }

    /// Reads range strings back into sorted slots.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        super::parse_slot_list(&items).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_of_matches_redis() {
        // Values from CLUSTER KEYSLOT on Redis 7.
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        let whole = crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") % SLOT_COUNT;
        assert_eq!(slot_of(b"foo{}{bar}"), whole);
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
        assert_eq!(slot_of(b""), 0);
    }

    #[test]
    fn parses_slot_lists() {
        assert_eq!(
            parse_slot_list(&["0 2 4-7"]).unwrap(),
            vec![0, 2, 4, 5, 6, 7]
        );
        assert_eq!(
            parse_slot_list(&["7", "0,7", "16383"]).unwrap(),
            vec![0, 7, 16383]
        );
    }

    #[test]
    fn rejects_bad_slot_lists() {
        for (bad, msg) in [
            ("16384", "out of range"),
            ("-1", "malformed"),
            ("a", "malformed"),
            ("5-3", "greater than"),
            ("1-", "malformed"),
            ("", "empty slot list"),
        ] {
            let err = parse_slot_list(&[bad]).unwrap_err().to_string();
            assert!(err.contains(msg), "{bad}: {err}");
        }
    }

    #[test]
    fn slot_ranges_are_slices() {
        assert_eq!(slot_range(3, 5), &[3, 4, 5]);
        assert_eq!(slot_range(16383, 16383), &[16383]);
        assert!(slot_range(5, 3).is_empty());
        assert_eq!(slot_range(16380, u16::MAX).len(), 4);
        assert!(slot_range(u16::MAX, u16::MAX).is_empty());
        let mut v = vec![5, 1, 5, 3];
        sort_slots(&mut v);
        assert_eq!(v, vec![1, 3, 5]);
        assert!(extend_range(&mut v, 6, 7));
        assert!(!extend_range(&mut v, 7, 8));
        assert_eq!(parse_slot_list(&["9 3-4 4"]).unwrap(), vec![3, 4, 9]);
        assert_eq!(to_ranges(&[65534, 65535]), vec![(65534, 65535)]);
    }

    #[test]
    fn formats_ranges() {
        assert_eq!(format_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_ranges(&[]), "-");
    }

    #[test]
    fn splits_evenly_in_order() {
        let parts = split_evenly(3);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![5462, 5461, 5461]
        );
        assert_eq!(parts[1][0], 5462);
        assert_eq!(*parts[2].last().unwrap(), 16383);
        assert_eq!(split_evenly(2)[0].len(), 8192);
    }
}
