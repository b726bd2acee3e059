//! The dependency resolver: the closure of requested packages plus
//! Priority: required, honouring versions, alternatives, Provides and
//! Conflicts/Breaks.
