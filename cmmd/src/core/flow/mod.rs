//! Pure flow domain: keys and the bounded table. No I/O, no clock.

pub mod key;
pub mod table;

pub use key::{Family, FlowKey, Tuple};
pub use table::{FlowId, FlowTable, Keyed, TableFull};
