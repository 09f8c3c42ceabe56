//! The domain: catalog, directory, tickets, lifecycle, deadlines and validation.
//! Pure functions and plain data; no I/O.

pub mod calendar;
pub mod catalog;
pub mod deadline;
pub mod directory;
pub mod event;
pub mod lifecycle;
pub mod mask;
pub mod number;
pub mod receipt;
pub mod ticket;
pub mod validate;
