//! The build context: the validated profile, the lock path, the cache and the
//! HTTP client, handed to each stage.
