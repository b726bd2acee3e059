//! Loading a repository's indexes: InRelease (verified), then each
//! component's Packages index (checked against Release), parsed.
