//! Money stays exact under concurrency, disorder and tampering (issue 18), on both backends:
//!
//! - [`concurrency`]: refunds of one charge at once, and requests for one payout run and its
//!   files at once;
//! - [`disorder`]: processor events before what they concern, and their reconciliation;
//! - [`verification`]: `verify` re-deriving each charge, statements that reconcile, and money
//!   changes in the audit log.

mod concurrency;
mod disorder;
mod verification;
