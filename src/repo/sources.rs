//! The host's apt sources (/etc/apt/sources.list, sources.list.d/*.list and
//! *.sources in deb822), read only to find mirror URLs.
