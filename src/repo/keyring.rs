//! OpenPGP keyrings: the Debian archive keyring built into craton (the .asc
//! files from debian-archive-keyring in keys/), or keys from a path.
