//! Packages indexes (deb822 stanzas) parsed into package records.
