//! The bounded flow table.
//!
//! Entries live in a slab of slots (a `Vec`), so a flow keeps the same [`FlowId`] for its whole
//! life: timers, route dependencies and the keepalive cursor refer to flows by id without
//! holding references. A `hashbrown::HashTable<u32>` indexes the slots by [`FlowKey`]; it stores
//! 4 bytes per bucket instead of a copy of the key. Keys are hashed with foldhash seeded at
//! random per process (hashbrown's default): SipHash cost 40-45 ns per key and 38 % of the
//! engine's time (`docs/performance.md`); the random seed keeps an outside attacker from
//! predicting bucket collisions.
//!
//! The capacity is a hard bound fixed at construction: [`FlowTable::insert`] refuses a new entry
//! when the table is full and never evicts one. The index grows with the entries (hashbrown
//! doubles it, rehashing what it holds once per doubling) and [`FlowTable::release_memory`]
//! gives it back after a burst: an index sized for the capacity up front spreads a few
//! thousand live keys over 1.3 MiB, and every lookup then missed the cache twice (its control
//! bytes and its bucket; `docs/performance.md`, 2026-12-03). Ids carry a generation so that a stale id (the
//! flow was removed and its slot reused) is detected instead of aliasing a different flow.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::key::FlowKey;

/// Something stored in the table: it knows its own key.
pub trait Keyed {
    /// The key under which the entry is indexed. Must not change while the entry is stored.
    fn key(&self) -> &FlowKey;
}

/// Stable handle of a table entry: slot index plus the slot's generation at insertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId {
    slot: u32,
    generation: u32,
}

impl FlowId {
    /// The slot index (dense, `0..capacity`), for cursors and compact references.
    pub fn slot(self) -> u32 {
        self.slot
    }
}

/// The table is at its configured capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("flow table full ({capacity} entries)")]
pub struct TableFull {
    /// The configured capacity.
    pub capacity: usize,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A capacity-bounded map from [`FlowKey`] to `T` with stable ids.
pub struct FlowTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    capacity: usize,
    len: usize,
}

impl<T: Keyed> FlowTable<T> {
    /// An empty table that will hold at most `capacity` entries. Slots and index grow on
    /// demand.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            capacity,
            len: 0,
        }
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hard bound given at construction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True when an insert would be refused.
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The id of the entry with this key.
    pub fn find(&self, key: &FlowKey) -> Option<FlowId> {
        let hash = self.hash(key);
        let slots = &self.slots;
        let slot = *self
            .index
            .find(hash, |&s| slots[s as usize].value.as_ref().is_some_and(|v| v.key() == key))?;
        Some(FlowId { slot, generation: self.slots[slot as usize].generation })
    }

    /// Insert a new entry. The caller has checked that the key is not present (use
    /// [`FlowTable::find`] first); inserting a duplicate key is a logic error that leaves two
    /// entries with the same key, the older one shadowing.
    pub fn insert(&mut self, value: T) -> Result<FlowId, TableFull> {
        if self.is_full() {
            return Err(TableFull { capacity: self.capacity });
        }
        let hash = self.hash(value.key());
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize].value = Some(value);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len())
                    .map_err(|_| TableFull { capacity: self.capacity })?;
                self.slots.push(Slot { generation: 0, value: Some(value) });
                slot
            }
        };
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, slot, |&s| {
            slots[s as usize].value.as_ref().map_or(0, |v| hasher.hash_one(v.key()))
        });
        self.len += 1;
        Ok(FlowId { slot, generation: self.slots[slot as usize].generation })
    }

    /// The entry behind `id`, unless it has been removed since.
    pub fn get(&self, id: FlowId) -> Option<&T> {
        let slot = self.slots.get(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_ref()
    }

    /// Mutable access to the entry behind `id`. The key must not be changed.
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// Remove the entry behind `id` and return it; its slot is reused by a later insert under
    /// a new generation.
    pub fn remove(&mut self, id: FlowId) -> Option<T> {
        let slot = self.slots.get(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let hash = self.hash(slot.value.as_ref()?.key());
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == id.slot) {
            entry.remove();
        }
        let slot = &mut self.slots[id.slot as usize];
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.slot);
        self.len -= 1;
        Some(value)
    }

    /// The id of the live entry in `slot`, if any (for cursors walking slots in order).
    pub fn id_at(&self, slot: u32) -> Option<FlowId> {
        let s = self.slots.get(slot as usize)?;
        s.value.as_ref().map(|_| FlowId { slot, generation: s.generation })
    }

    /// One past the highest slot ever used: the bound for slot cursors.
    pub fn slot_end(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// All entries with their ids, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (FlowId, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let slot = u32::try_from(i).ok()?;
            s.value.as_ref().map(|v| (FlowId { slot, generation: s.generation }, v))
        })
    }

    /// Ids of all entries matching `pred`, collected so the caller may mutate afterwards.
    pub fn ids_where(&self, mut pred: impl FnMut(&T) -> bool) -> Vec<FlowId> {
        self.iter().filter(|(_, v)| pred(v)).map(|(id, _)| id).collect()
    }

    /// Give back the index's room once it is at most an eighth full (after a burst), keeping
    /// twice what it holds: rehashes the live entries once.
    pub fn release_memory(&mut self) {
        let room = self.index.capacity();
        if room > 4096 && self.len < room / 8 {
            let (slots, hasher) = (&self.slots, &self.hasher);
            self.index.shrink_to(2 * self.len, |&s| {
                slots[s as usize].value.as_ref().map_or(0, |v| hasher.hash_one(v.key()))
            });
        }
    }

    /// Bytes of heap this table holds (slots, free list and index), for the memory figures.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<T>>()
            + self.free.capacity() * 4
            + self.index.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::key::Tuple;

    #[derive(Debug, PartialEq)]
    struct Entry(FlowKey, u32);
    impl Keyed for Entry {
        fn key(&self) -> &FlowKey {
            &self.0
        }
    }

    fn key(n: u32) -> FlowKey {
        FlowKey {
            zone: 0,
            proto: 6,
            orig: Tuple {
                src: std::net::Ipv4Addr::from(0x0a00_0000 + n).into(),
                dst: "192.0.2.1".parse().unwrap(),
                src_port: 40000,
                dst_port: 443,
            },
        }
    }

    #[test]
    fn insert_find_remove() {
        let mut t = FlowTable::with_capacity(4);
        let a = t.insert(Entry(key(1), 10)).unwrap();
        let b = t.insert(Entry(key(2), 20)).unwrap();
        assert_eq!(t.find(&key(1)), Some(a));
        assert_eq!(t.find(&key(2)), Some(b));
        assert_eq!(t.find(&key(3)), None);
        assert_eq!(t.get(b).unwrap().1, 20);
        assert_eq!(t.remove(a).unwrap().1, 10);
        assert_eq!(t.find(&key(1)), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_table_refuses_and_never_evicts() {
        let mut t = FlowTable::with_capacity(2);
        let a = t.insert(Entry(key(1), 1)).unwrap();
        t.insert(Entry(key(2), 2)).unwrap();
        assert_eq!(t.insert(Entry(key(3), 3)), Err(TableFull { capacity: 2 }));
        assert_eq!(t.len(), 2);
        assert!(t.find(&key(1)).is_some() && t.find(&key(2)).is_some());
        t.remove(a);
        assert!(t.insert(Entry(key(3), 3)).is_ok(), "room appears after a removal");
    }

    #[test]
    fn stale_ids_do_not_alias_reused_slots() {
        let mut t = FlowTable::with_capacity(2);
        let a = t.insert(Entry(key(1), 1)).unwrap();
        t.remove(a);
        let b = t.insert(Entry(key(2), 2)).unwrap();
        assert_eq!(a.slot(), b.slot(), "slot reused");
        assert!(t.get(a).is_none());
        assert!(t.remove(a).is_none());
        assert_eq!(t.get(b).unwrap().1, 2);
    }

    #[test]
    fn churn_keeps_index_consistent() {
        let mut t = FlowTable::with_capacity(1000);
        let mut live = std::collections::HashMap::new();
        for round in 0..20u32 {
            for n in 0..1000 {
                let k = key(round * 1000 + n);
                if let Ok(id) = t.insert(Entry(k, n)) {
                    live.insert(k, id);
                }
            }
            let keys: Vec<_> = live.keys().copied().take(700).collect();
            for k in keys {
                let id = live.remove(&k).unwrap();
                assert_eq!(t.remove(id).unwrap().0, k);
            }
            for (k, id) in &live {
                assert_eq!(t.find(k), Some(*id));
            }
            assert_eq!(t.len(), live.len());
        }
    }

    #[test]
    fn the_index_grows_with_the_entries_and_shrinks_after_a_burst() {
        let mut t = FlowTable::with_capacity(100_000);
        assert_eq!(t.index.capacity(), 0, "nothing up front");
        let ids: Vec<_> = (0..50_000).map(|n| t.insert(Entry(key(n), n)).unwrap()).collect();
        let grown = t.index.allocation_size();
        assert!(t.index.capacity() >= 50_000 && grown >= 50_000 * 5, "{grown}");
        for id in &ids[100..] {
            t.remove(*id).unwrap();
        }
        assert_eq!(t.index.allocation_size(), grown, "removals alone keep the room");
        t.release_memory();
        assert!(t.index.allocation_size() < 2048, "{}", t.index.allocation_size());
        for (n, id) in ids[..100].iter().enumerate() {
            assert_eq!(t.find(&key(n as u32)), Some(*id), "entries survive the shrink");
        }
        let before = t.index.allocation_size();
        t.release_memory();
        assert_eq!(t.index.allocation_size(), before, "nothing to give back the second time");
    }
}
