//! Step 4: system users and groups. The profile's [[user]]s and [[group]]s
//! are written as a sysusers.d(5) fragment, so the booted system keeps
//! them, AND applied to /etc/passwd, group, shadow and gshadow of the tree
//! now, so that they exist in the built image (the factory /etc) and files
//! can be owned by them.
//!
//! Debian trixie ships systemd-sysusers, but running it needs the tree as
//! root (a chroot), which this stage does not have; so the same rules are
//! applied natively: names that exist are left alone, a missing id is the
//! highest free one of the system range (systemd-sysusers allocates
//! downwards from the top), a user's primary group has its name and, when
//! free, its id, and every account is locked ("!*": no password login).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::files::tree;
use crate::profile::{Group, User};

/// Where the profile's sysusers.d fragment goes: /usr/lib/sysusers.d is
/// the vendor directory (sysusers.d(5)), part of the immutable /usr.
pub const SYSUSERS_FRAGMENT: &str = "/usr/lib/sysusers.d/craton-profile.conf";
/// Debian Policy 9.2.2: ids 100-999 are for dynamically allocated system
/// users and groups.
pub const SYSTEM_ID_MIN: u32 = 100;
pub const SYSTEM_ID_MAX: u32 = 999;
/// The password field of a locked account with no password (shadow(5): a
/// leading `!` locks; `*` matches no password). systemd-sysusers writes it.
const LOCKED: &str = "!*";

pub fn apply(tree: &Path, users: &[User], groups: &[Group]) -> Result<()> {
    if users.is_empty() && groups.is_empty() {
        return Ok(());
    }
    tree::write_file(
        tree,
        SYSUSERS_FRAGMENT,
        fragment(users, groups).as_bytes(),
        0o644,
    )?;
    let mut db = Db::read(tree)?;
    for g in groups {
        db.add_group(&g.name, g.gid)?;
    }
    for u in users {
        db.add_user(u)?;
    }
    for u in users {
        for g in &u.groups {
            db.add_member(&u.name, g)?;
        }
    }
    db.write(tree)
}

/// The sysusers.d(5) lines: `g NAME ID`, `u NAME ID "GECOS" HOME SHELL`,
/// `m USER GROUP`; `-` for an id chosen at boot.
fn fragment(users: &[User], groups: &[Group]) -> String {
    let id = |v: Option<u32>| v.map_or("-".to_string(), |n| n.to_string());
    let mut out =
        String::from("# Users and groups of the craton profile; also applied at build time.\n");
    for g in groups {
        out.push_str(&format!("g {} {}\n", g.name, id(g.gid)));
    }
    for u in users {
        let gecos = if u.gecos.is_empty() {
            "-".to_string()
        } else {
            format!("\"{}\"", u.gecos.replace('\\', "\\\\").replace('"', "\\\""))
        };
        out.push_str(&format!(
            "u {} {} {gecos} {} {}\n",
            u.name,
            id(u.uid),
            u.home,
            u.shell
        ));
    }
    for u in users {
        for g in &u.groups {
            out.push_str(&format!("m {} {g}\n", u.name));
        }
    }
    out
}

/// The four account files as lines of `:`-separated fields.
struct Db {
    passwd: Vec<Vec<String>>,
    group: Vec<Vec<String>>,
    shadow: Vec<Vec<String>>,
    gshadow: Vec<Vec<String>>,
}

/// (path in the tree, mode when the file is new): shadow files are
/// readable by root only (Debian makes them 0640 root:shadow; an existing
/// file keeps its mode and owner).
const FILES: [(&str, u32); 4] = [
    ("/etc/passwd", 0o644),
    ("/etc/group", 0o644),
    ("/etc/shadow", 0o600),
    ("/etc/gshadow", 0o600),
];

impl Db {
    fn read(tree: &Path) -> Result<Self> {
        let parse = |path: &str| -> Result<Vec<Vec<String>>> {
            Ok(tree::read_or_empty(tree, path)?
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| l.split(':').map(str::to_string).collect())
                .collect())
        };
        Ok(Self {
            passwd: parse(FILES[0].0)?,
            group: parse(FILES[1].0)?,
            shadow: parse(FILES[2].0)?,
            gshadow: parse(FILES[3].0)?,
        })
    }

    fn write(&self, tree: &Path) -> Result<()> {
        for ((path, mode), lines) in
            FILES
                .iter()
                .zip([&self.passwd, &self.group, &self.shadow, &self.gshadow])
        {
            let text: String = lines.iter().map(|l| l.join(":") + "\n").collect();
            let host = tree::place(tree, path)?;
            if fs::symlink_metadata(&host).is_ok_and(|m| m.is_file()) {
                // In place, so the file keeps its mode and group (shadow).
                fs::write(&host, text).with_context(|| format!("writing {}", host.display()))?;
            } else {
                tree::write_file(tree, path, text.as_bytes(), *mode)?;
            }
        }
        Ok(())
    }

    fn ids(lines: &[Vec<String>]) -> BTreeSet<u32> {
        lines
            .iter()
            .filter_map(|l| l.get(2).and_then(|f| f.parse().ok()))
            .collect()
    }

    fn find<'a>(lines: &'a mut [Vec<String>], name: &str) -> Option<&'a mut Vec<String>> {
        lines.iter_mut().find(|l| l[0] == name)
    }

    /// The highest id of the system range free in all of `taken`.
    fn free_id(taken: &[&BTreeSet<u32>], what: &str) -> Result<u32> {
        (SYSTEM_ID_MIN..=SYSTEM_ID_MAX)
            .rev()
            .find(|id| taken.iter().all(|t| !t.contains(id)))
            .ok_or_else(|| {
                anyhow::anyhow!("no free id in {SYSTEM_ID_MIN}-{SYSTEM_ID_MAX} for {what}")
            })
    }

    /// Adds group `name` unless it exists; returns its gid.
    fn add_group(&mut self, name: &str, gid: Option<u32>) -> Result<u32> {
        if let Some(l) = Self::find(&mut self.group, name) {
            return l[2]
                .parse()
                .map_err(|_| anyhow::anyhow!("/etc/group: group {name} has gid `{}`", l[2]));
        }
        let gids = Self::ids(&self.group);
        let gid = match gid {
            Some(g) if gids.contains(&g) => {
                bail!("group {name}: gid {g} is already used in /etc/group")
            }
            Some(g) => g,
            None => Self::free_id(&[&gids], &format!("group {name}"))?,
        };
        self.group.push(fields(&[name, "x", &gid.to_string(), ""]));
        self.gshadow.push(fields(&[name, LOCKED, "", ""]));
        Ok(gid)
    }

    fn add_user(&mut self, u: &User) -> Result<()> {
        if Self::find(&mut self.passwd, &u.name).is_some() {
            return Ok(());
        }
        let uids = Self::ids(&self.passwd);
        let gids = Self::ids(&self.group);
        let uid = match u.uid {
            Some(id) if uids.contains(&id) => {
                bail!("user {}: uid {id} is already used in /etc/passwd", u.name)
            }
            Some(id) => id,
            // Free as a gid too, so that the user's group can share it.
            None => Self::free_id(&[&uids, &gids], &format!("user {}", u.name))?,
        };
        let exists = Self::find(&mut self.group, &u.name).is_some();
        let gid = if !exists && !gids.contains(&uid) {
            self.add_group(&u.name, Some(uid))?
        } else {
            self.add_group(&u.name, None)?
        };
        self.passwd.push(fields(&[
            &u.name,
            "x",
            &uid.to_string(),
            &gid.to_string(),
            &u.gecos,
            &u.home,
            &u.shell,
        ]));
        // shadow(5): name, password, then seven empty aging fields (no last
        // change date, so the file does not depend on the build day).
        self.shadow
            .push(fields(&[&u.name, LOCKED, "", "", "", "", "", "", ""]));
        Ok(())
    }

    /// sysusers.d(5) `m`: the group is created when missing.
    fn add_member(&mut self, user: &str, group: &str) -> Result<()> {
        self.add_group(group, None)?;
        for lines in [&mut self.group, &mut self.gshadow] {
            if let Some(l) = Self::find(lines, group) {
                while l.len() < 4 {
                    l.push(String::new());
                }
                let mut members: Vec<&str> = l[3].split(',').filter(|m| !m.is_empty()).collect();
                if !members.contains(&user) {
                    members.push(user);
                }
                l[3] = members.join(",");
            }
        }
        Ok(())
    }
}

fn fields(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: Option<u32>, groups: &[&str]) -> User {
        User {
            name: name.into(),
            uid,
            gecos: "Core \"user\"".into(),
            home: "/home/core".into(),
            shell: "/bin/bash".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn applied_to_etc_and_written_for_sysusers() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        fs::create_dir(tree.join("etc")).unwrap();
        fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        fs::write(tree.join("etc/group"), "root:x:0:\ndocker:x:999:\n").unwrap();
        fs::write(tree.join("etc/shadow"), "root:*:20000:0:99999:7:::\n").unwrap();
        fs::write(tree.join("etc/gshadow"), "root:*::\ndocker:!::\n").unwrap();
        let groups = [
            Group {
                name: "rkt".into(),
                gid: None,
            },
            Group {
                name: "rkt-admin".into(),
                gid: Some(500),
            },
            Group {
                name: "root".into(),
                gid: Some(7),
            },
        ];
        let users = [
            user("core", None, &["docker", "rkt", "wheel"]),
            User {
                gecos: String::new(),
                ..user("root", Some(9), &[])
            },
        ];
        apply(tree, &users, &groups).unwrap();

        let read = |p: &str| fs::read_to_string(tree.join(p)).unwrap();
        // 999 is docker's, so rkt gets 998; core's uid and gid are 997.
        assert_eq!(
            read("etc/group"),
            "root:x:0:\ndocker:x:999:core\nrkt:x:998:core\nrkt-admin:x:500:\n\
             core:x:997:\nwheel:x:996:core\n"
        );
        assert_eq!(
            read("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\ncore:x:997:997:Core \"user\":/home/core:/bin/bash\n"
        );
        assert_eq!(
            read("etc/shadow"),
            "root:*:20000:0:99999:7:::\ncore:!*:::::::\n"
        );
        assert_eq!(
            read("etc/gshadow"),
            "root:*::\ndocker:!::core\nrkt:!*::core\nrkt-admin:!*::\ncore:!*::\nwheel:!*::core\n"
        );
        assert_eq!(
            read("usr/lib/sysusers.d/craton-profile.conf"),
            "# Users and groups of the craton profile; also applied at build time.\n\
             g rkt -\ng rkt-admin 500\ng root 7\n\
             u core - \"Core \\\"user\\\"\" /home/core /bin/bash\nu root 9 - /home/core /bin/bash\n\
             m core docker\nm core rkt\nm core wheel\n"
        );
    }

    #[test]
    fn a_taken_id_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        fs::write(t.path().join("etc/group"), "docker:x:999:\n").unwrap();
        let err = apply(
            t.path(),
            &[],
            &[Group {
                name: "rkt".into(),
                gid: Some(999),
            }],
        );
        assert_eq!(
            format!("{:#}", err.unwrap_err()),
            "group rkt: gid 999 is already used in /etc/group"
        );
    }
}
