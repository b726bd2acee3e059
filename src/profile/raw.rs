//! Phase one: one profile file as written, before `extends` and before any
//! value is checked. Every key is optional here (the merged profile decides
//! what is required) and values that validation may complain about keep
//! their span.
//!
//! This module checks only the TOML syntax, `schema`, unknown keys and value
//! types; meaning is `validate`'s job. Values whose type says everything
//! (platform names, sizes, the enums of `[disk]` and `archive`) are typed
//! here already, so serde's message lists what is accepted.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::de::{DeserializeOwned, Error as _, IgnoredAny, IntoDeserializer};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::source::{At, FileId, Files, toml_error};
use super::{Archive, Platform, SCHEMA_VERSION, UsrB, UsrCompression, UsrFilesystem};
use crate::partition::Mib;

/// A list of strings with the span of the list and of each item.
pub(super) type List = Spanned<Vec<Spanned<String>>>;

/// One profile file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFile {
    /// Checked on the parsed document before this struct is read (see
    /// [`check_schema`]), so a file of another schema reports its schema
    /// rather than its first unknown key.
    #[serde(rename = "schema")]
    pub _schema: Option<IgnoredAny>,
    pub extends: Option<List>,
    pub image: Option<RawImage>,
    pub repository: Option<Vec<Spanned<RawRepository>>>,
    pub packages: Option<RawPackages>,
    pub artifact: Option<Vec<Spanned<RawArtifact>>>,
    pub initrd: Option<RawInitrd>,
    pub tools: Option<RawTools>,
    /// `[platform.NAME]`: keyed by the enum, so serde rejects an unknown
    /// name with the list of known ones.
    pub platform: Option<BTreeMap<Platform, RawPlatform>>,
    pub disk: Option<RawDisk>,
    pub boot: Option<RawBoot>,
    pub update: Option<RawUpdate>,
    pub provision: Option<RawProvision>,
    pub system: Option<RawSystem>,
    pub units: Option<RawUnits>,
    pub file: Option<Vec<Spanned<RawInlineFile>>>,
    pub user: Option<Vec<Spanned<RawUser>>>,
    pub group: Option<Vec<Spanned<RawGroup>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawImage {
    pub name: Option<Spanned<String>>,
    pub version: Option<Spanned<String>>,
    pub os_release: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRepository {
    pub name: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "by_name")]
    pub archive: Option<Spanned<Archive>>,
    pub suites: Option<List>,
    pub components: Option<List>,
    pub mirror: Option<Spanned<String>>,
    pub keyring: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPackages {
    pub include: Option<List>,
    pub exclude: Option<List>,
    pub path_exclude: Option<List>,
    pub path_include: Option<List>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawArtifact {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub sha256: Option<Spanned<String>>,
    pub files: Option<Spanned<Vec<Spanned<RawArtifactFile>>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawArtifactFile {
    pub source: Option<Spanned<String>>,
    pub destination: Option<Spanned<String>>,
    /// Any value, so that an integer gets a message on why modes are strings.
    pub mode: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTools {
    pub packages: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawInitrd {
    pub packages: Option<List>,
    pub modules: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPlatform {
    pub console: Option<Spanned<String>>,
    pub kernel_args: Option<List>,
    pub packages: Option<List>,
    pub oem_file: Option<Vec<Spanned<RawInlineFile>>>,
}

/// Sizes are [`Mib`] already: its `Deserialize` checks the range, so a zero
/// or negative size fails here with the accepted range.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDisk {
    pub esp_mib: Option<Spanned<Mib>>,
    pub bios_boot_mib: Option<Spanned<Mib>>,
    pub usr_mib: Option<Spanned<Mib>>,
    pub oem_mib: Option<Spanned<Mib>>,
    pub root_mib: Option<Spanned<Mib>>,
    #[serde(default, deserialize_with = "by_name")]
    pub usr_filesystem: Option<Spanned<UsrFilesystem>>,
    #[serde(default, deserialize_with = "by_name")]
    pub usr_compression: Option<Spanned<UsrCompression>>,
    #[serde(default, deserialize_with = "by_name")]
    pub usr_b: Option<Spanned<UsrB>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBoot {
    pub timeout_secs: Option<Spanned<i64>>,
    pub kernel_args: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawUpdate {
    pub channel: Option<Spanned<String>>,
    pub health_units: Option<List>,
    pub confirm_after_secs: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawProvision {
    pub ignition: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSystem {
    pub hostname: Option<Spanned<String>>,
    pub default_target: Option<Spanned<String>>,
    pub overlays: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawUnits {
    pub enable: Option<List>,
    pub disable: Option<List>,
    pub mask: Option<List>,
}

/// One `[[file]]`: an inline file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawInlineFile {
    pub path: Option<Spanned<String>>,
    /// Any value, as for artifact files: an integer gets the string message.
    pub mode: Option<Spanned<toml::Value>>,
    pub content: Option<Spanned<String>>,
}

/// One `[[user]]` (sysusers.d(5) `u`, plus `m` lines for `groups`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawUser {
    pub name: Option<Spanned<String>>,
    pub uid: Option<Spanned<i64>>,
    pub gecos: Option<Spanned<String>>,
    pub home: Option<Spanned<String>>,
    pub shell: Option<Spanned<String>>,
    pub groups: Option<List>,
}

/// One `[[group]]` (sysusers.d(5) `g`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawGroup {
    pub name: Option<Spanned<String>>,
    pub gid: Option<Spanned<i64>>,
}

/// An enum written as its name, a string: the enum's derived `Deserialize`
/// decides the names and lists them for an unknown one. Read directly, toml
/// would also take serde's table form of an enum (`usr-b = { copy = {} }`)
/// and answer a number with "wanted string or table", naming no value.
fn by_name<'de, D, T>(d: D) -> Result<Option<Spanned<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let Some(name) = Option::<Spanned<String>>::deserialize(d)? else {
        return Ok(None);
    };
    let span = name.span();
    let value: Result<T, serde::de::value::Error> =
        T::deserialize(name.into_inner().into_deserializer());
    value
        .map(|v| Some(Spanned::new(span, v)))
        .map_err(D::Error::custom)
}

/// Parses file `id` of `files`: syntax, then `schema`, then the raw structs.
pub(super) fn parse(files: &Files, id: FileId) -> Result<RawFile> {
    let text = &files.get(id).text;
    let doc = DeTable::parse(text).map_err(|e| toml_error(files, id, &e))?;
    check_schema(files, id, doc.get_ref())?;
    toml::from_str(text).map_err(|e| toml_error(files, id, &e))
}

/// `schema = 1` must be present; anything else is "got X, expected 1" with
/// X as written in the file.
fn check_schema(files: &Files, id: FileId, doc: &DeTable<'_>) -> Result<()> {
    let Some(value) = doc.get("schema") else {
        return Err(files.err_file(
            id,
            format!("missing `schema` (expected schema = {SCHEMA_VERSION})"),
        ));
    };
    let is_current = match value.get_ref() {
        DeValue::Integer(i) => {
            i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) == Ok(SCHEMA_VERSION)
        }
        _ => false,
    };
    if is_current {
        return Ok(());
    }
    let at = At::of(id, value);
    let written = files.get(id).text.get(value.span()).unwrap_or("?");
    Err(files.err(
        at,
        format!("unsupported schema: got {written}, expected {SCHEMA_VERSION}"),
    ))
}
