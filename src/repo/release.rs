//! InRelease: verify the OpenPGP cleartext signature, parse the Release
//! fields and the SHA256 list of index files.
