//! Which mirror URL serves a repository: --mirror, CRATON_MIRROR, the
//! profile, then the host's apt sources.
