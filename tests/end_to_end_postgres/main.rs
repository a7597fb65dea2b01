//! The end-to-end suite again, every in-process trust on PostgreSQL: the same tests (the
//! binary's name selects the backend, `datatrust_tests::postgres_backend`). Tests about the
//! embedded store's files, and those that start `datatrust serve` processes of their own,
//! say SKIPPED here; they ran in `end_to_end`.

#[path = "../end_to_end/main.rs"]
mod suite;
