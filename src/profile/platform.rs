//! The platforms an image can be built for (DESIGN.md "Platforms"): one
//! enum that both the profile's `[platform.NAME]` tables (serde) and
//! `craton build --platform` (clap) read, so the names are spelled here
//! only and an unknown name is rejected with the list of known ones.
//!
//! What a platform changes in the image (console, kernel arguments, OEM
//! files) is the build's business; this module only names them.

use std::fmt;

/// A target platform. The variant names, lower-cased, are the names in
/// profiles and on the command line.
#[derive(
    serde::Deserialize, clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// QEMU/KVM virtual machines, qcow2 output.
    Qemu,
    /// Google Compute Engine, disk.raw in a tar.gz.
    Gce,
    /// Bare metal, raw image.
    Metal,
}

impl Platform {
    /// Every platform, in the order messages and help list them.
    pub const ALL: [Platform; 3] = [Platform::Qemu, Platform::Gce, Platform::Metal];

    /// Ignition's name of the platform (`ignition.platform.id=`, its
    /// supported-platforms list): Google's is "gcp".
    pub fn ignition_id(self) -> &'static str {
        match self {
            Platform::Qemu => "qemu",
            Platform::Gce => "gcp",
            Platform::Metal => "metal",
        }
    }

    /// The name in profiles, on the command line and in the OEM files.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Qemu => "qemu",
            Platform::Gce => "gce",
            Platform::Metal => "metal",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    /// serde, clap and `name()` must agree on every spelling, since each
    /// derives its own from the variant names.
    #[test]
    fn one_spelling_for_serde_clap_and_name() {
        assert_eq!(Platform::ALL.len(), Platform::value_variants().len());
        for p in Platform::ALL {
            let clap_name = p.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(clap_name, p.name());
            let toml: Platform = toml::Value::String(p.name().into()).try_into().unwrap();
            assert_eq!(toml, p);
            assert_eq!(p.to_string(), p.name());
        }
    }
}
