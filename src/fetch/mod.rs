//! Fetch: parallel, verified downloads of packages and artifacts into the
//! content-addressed [`cache::Cache`].

pub mod cache;

pub use cache::Cache;
