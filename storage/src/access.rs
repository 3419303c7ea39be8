//! Roles, role membership, relation owners and table privileges: PostgreSQL's access
//! model, kept in the metadata store.
//!
//! A role is PostgreSQL's `pg_authid` row: a name, attributes and, for roles that log in
//! with a password, a SCRAM-SHA-256 verifier (never the password). Roles are numbered like
//! PostgreSQL's OIDs: the bootstrap superuser `henge` is 10, as in every PostgreSQL
//! cluster, and roles created later count from 16384. A relation (table or view) is owned
//! by the role that created it; privileges granted on it are kept per grantee, the PUBLIC
//! pseudo-role being 0. This module holds the data and answers questions about it; the SQL
//! and its checks live in the server.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The bootstrap superuser's OID (PostgreSQL's `BOOTSTRAP_SUPERUSERID`).
pub const BOOTSTRAP_SUPERUSER: u32 = 10;
/// The bootstrap superuser's name, and the database's.
pub const BOOTSTRAP_NAME: &str = "henge";
/// The grantee that stands for every role.
pub const PUBLIC: u32 = 0;
/// The first OID given to a role created by a user (PostgreSQL's `FirstNormalObjectId`).
const FIRST_ROLE_OID: u32 = 16384;

/// One role: PostgreSQL's `pg_authid` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDef {
    pub oid: u32,
    pub name: String,
    #[serde(default)]
    pub superuser: bool,
    #[serde(default = "yes")]
    pub inherit: bool,
    #[serde(default)]
    pub create_role: bool,
    #[serde(default)]
    pub create_db: bool,
    #[serde(default)]
    pub login: bool,
    #[serde(default)]
    pub replication: bool,
    #[serde(default)]
    pub bypass_rls: bool,
    /// At most this many sessions at once; -1 for no limit.
    #[serde(default = "no_limit")]
    pub connection_limit: i32,
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, or none: then the
    /// role cannot log in with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The password is valid until then (microseconds since the epoch; `i64::MAX` is
    /// `infinity`); none means for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
}

fn yes() -> bool {
    true
}

fn no_limit() -> i32 {
    -1
}

impl RoleDef {
    /// A role with PostgreSQL's defaults for `CREATE ROLE name`: no login, inherits.
    pub fn new(name: impl Into<String>) -> RoleDef {
        RoleDef {
            oid: 0,
            name: name.into(),
            superuser: false,
            inherit: true,
            create_role: false,
            create_db: false,
            login: false,
            replication: false,
            bypass_rls: false,
            connection_limit: -1,
            password: None,
            valid_until: None,
        }
    }

    fn bootstrap() -> RoleDef {
        RoleDef {
            oid: BOOTSTRAP_SUPERUSER,
            superuser: true,
            create_role: true,
            create_db: true,
            login: true,
            replication: true,
            bypass_rls: true,
            ..RoleDef::new(BOOTSTRAP_NAME)
        }
    }
}

/// `member` is a member of `role` (`GRANT role TO member`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub role: u32,
    pub member: u32,
    /// WITH ADMIN OPTION: the member may grant the role to others.
    #[serde(default)]
    pub admin: bool,
    pub grantor: u32,
}

/// Privileges on a table, as a set of bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Privileges(pub u16);

impl Privileges {
    pub const SELECT: Privileges = Privileges(1);
    pub const INSERT: Privileges = Privileges(2);
    pub const UPDATE: Privileges = Privileges(4);
    pub const DELETE: Privileges = Privileges(8);
    pub const TRUNCATE: Privileges = Privileges(16);
    pub const REFERENCES: Privileges = Privileges(32);
    pub const TRIGGER: Privileges = Privileges(64);
    /// Everything a table's owner has: PostgreSQL's `arwdDxt`.
    pub const ALL: Privileges = Privileges(127);
    /// On a schema: creating objects in it (`C`); on the database, creating schemas.
    pub const CREATE: Privileges = Privileges(128);
    /// On a schema: looking objects up in it (`U`).
    pub const USAGE: Privileges = Privileges(256);
    /// On the database: connecting (`c`).
    pub const CONNECT: Privileges = Privileges(512);
    /// On the database: creating temporary tables (`T`).
    pub const TEMPORARY: Privileges = Privileges(1024);
    pub const NONE: Privileges = Privileges(0);

    /// Each privilege with its SQL name and its letter in an ACL item, in ACL order.
    pub const NAMED: [(Privileges, &'static str, char); 7] = [
        (Privileges::INSERT, "INSERT", 'a'),
        (Privileges::SELECT, "SELECT", 'r'),
        (Privileges::UPDATE, "UPDATE", 'w'),
        (Privileges::DELETE, "DELETE", 'd'),
        (Privileges::TRUNCATE, "TRUNCATE", 'D'),
        (Privileges::REFERENCES, "REFERENCES", 'x'),
        (Privileges::TRIGGER, "TRIGGER", 't'),
    ];

    pub fn contains(self, other: Privileges) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: Privileges) -> Privileges {
        Privileges(self.0 | other.0)
    }

    pub fn minus(self, other: Privileges) -> Privileges {
        Privileges(self.0 & !other.0)
    }

    /// The privilege of this SQL name (`select`, `INSERT` …).
    pub fn named(name: &str) -> Option<Privileges> {
        Privileges::NAMED
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .map(|(p, _, _)| *p)
    }
}

/// Privileges `grantee` holds on relation `relation`, granted by `grantor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub relation: u64,
    pub grantee: u32,
    pub grantor: u32,
    pub privileges: Privileges,
    /// Those of `privileges` the grantee may grant on (WITH GRANT OPTION).
    #[serde(default)]
    pub grantable: Privileges,
}

/// Every role, membership, owner and grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    next_oid: u32,
    /// By OID. (Maps are written as lists of pairs: the journal's records are flattened,
    /// and serde cannot read numbers back as the keys of a flattened map.)
    #[serde(with = "pairs")]
    roles: BTreeMap<u32, RoleDef>,
    #[serde(default)]
    pub members: Vec<Membership>,
    /// Owner of each relation by its id; relations not listed belong to the bootstrap
    /// superuser (those created before roles existed).
    #[serde(default, with = "pairs")]
    owners: BTreeMap<u64, u32>,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

impl Default for Access {
    fn default() -> Access {
        let bootstrap = RoleDef::bootstrap();
        Access {
            next_oid: FIRST_ROLE_OID,
            roles: BTreeMap::from([(bootstrap.oid, bootstrap)]),
            members: Vec::new(),
            owners: BTreeMap::new(),
            grants: Vec::new(),
        }
    }
}

impl Access {
    /// Every role, by OID.
    pub fn roles(&self) -> impl Iterator<Item = &RoleDef> {
        self.roles.values()
    }

    pub fn role(&self, oid: u32) -> Option<&RoleDef> {
        self.roles.get(&oid)
    }

    pub fn role_mut(&mut self, oid: u32) -> Option<&mut RoleDef> {
        self.roles.get_mut(&oid)
    }

    pub fn role_named(&self, name: &str) -> Option<&RoleDef> {
        self.roles.values().find(|r| r.name == name)
    }

    /// Adds a role with a fresh OID (the one in `def` is ignored) and returns the OID.
    pub fn add_role(&mut self, mut def: RoleDef) -> u32 {
        def.oid = self.next_oid;
        self.next_oid += 1;
        self.roles.insert(def.oid, def);
        self.next_oid - 1
    }

    /// Removes a role, its memberships both ways and the grants made to it.
    pub fn remove_role(&mut self, oid: u32) {
        self.roles.remove(&oid);
        self.members.retain(|m| m.role != oid && m.member != oid);
        self.grants.retain(|g| g.grantee != oid);
    }

    /// The owner of a relation.
    pub fn owner(&self, relation: u64) -> u32 {
        self.owners
            .get(&relation)
            .copied()
            .unwrap_or(BOOTSTRAP_SUPERUSER)
    }

    pub fn set_owner(&mut self, relation: u64, owner: u32) {
        if owner == BOOTSTRAP_SUPERUSER {
            self.owners.remove(&relation);
        } else {
            self.owners.insert(relation, owner);
        }
    }

    /// The relations `role` owns.
    pub fn owned_by(&self, role: u32) -> Vec<u64> {
        self.owners
            .iter()
            .filter(|(_, &o)| o == role)
            .map(|(&r, _)| r)
            .collect()
    }

    /// Forgets a dropped relation's owner and grants.
    pub fn forget_relation(&mut self, relation: u64) {
        self.owners.remove(&relation);
        self.grants.retain(|g| g.relation != relation);
    }

    /// `role` itself and every role it is a member of, directly or through others.
    /// With `inheriting`, only through roles that inherit (the privileges a role uses
    /// without SET ROLE); without, every membership (what SET ROLE may become).
    pub fn closure(&self, role: u32, inheriting: bool) -> BTreeSet<u32> {
        let mut seen = BTreeSet::from([role]);
        let mut todo = vec![role];
        while let Some(r) = todo.pop() {
            if inheriting && !self.roles.get(&r).is_some_and(|d| d.inherit) {
                continue;
            }
            for m in self.members.iter().filter(|m| m.member == r) {
                if seen.insert(m.role) {
                    todo.push(m.role);
                }
            }
        }
        seen
    }

    /// Whether `member` is `role` or a member of it through any chain of memberships.
    pub fn is_member(&self, member: u32, role: u32) -> bool {
        self.closure(member, false).contains(&role)
    }

    /// Whether `role` is a superuser.
    pub fn is_superuser(&self, role: u32) -> bool {
        self.roles.get(&role).is_some_and(|r| r.superuser)
    }

    /// Whether `role` has the privileges of the relation's owner: a superuser, the owner,
    /// or a member of the owner that inherits its privileges.
    pub fn owns(&self, role: u32, relation: u64) -> bool {
        self.is_superuser(role) || self.closure(role, true).contains(&self.owner(relation))
    }

    /// The privileges `role` holds on a relation: all of them for a superuser or its
    /// owner, otherwise those granted to it, to the roles whose privileges it inherits and
    /// to PUBLIC.
    pub fn privileges(&self, role: u32, relation: u64) -> Privileges {
        if self.owns(role, relation) {
            return Privileges::ALL;
        }
        let mut roles = self.closure(role, true);
        roles.insert(PUBLIC);
        self.grants
            .iter()
            .filter(|g| g.relation == relation && roles.contains(&g.grantee))
            .fold(Privileges::NONE, |p, g| p.union(g.privileges))
    }

    /// The privileges `role` may grant on a relation.
    pub fn grantable(&self, role: u32, relation: u64) -> Privileges {
        if self.owns(role, relation) {
            return Privileges::ALL;
        }
        let roles = self.closure(role, true);
        self.grants
            .iter()
            .filter(|g| g.relation == relation && roles.contains(&g.grantee))
            .fold(Privileges::NONE, |p, g| p.union(g.grantable))
    }

    /// Grants `privileges` on `relation` to `grantee`, adding to what `grantor` granted it
    /// before.
    pub fn grant(
        &mut self,
        relation: u64,
        grantee: u32,
        grantor: u32,
        privileges: Privileges,
        with_grant_option: bool,
    ) {
        let grantable = if with_grant_option {
            privileges
        } else {
            Privileges::NONE
        };
        match self
            .grants
            .iter_mut()
            .find(|g| g.relation == relation && g.grantee == grantee && g.grantor == grantor)
        {
            Some(g) => {
                g.privileges = g.privileges.union(privileges);
                g.grantable = g.grantable.union(grantable);
            }
            None => self.grants.push(Grant {
                relation,
                grantee,
                grantor,
                privileges,
                grantable,
            }),
        }
    }

    /// Grants on `relation` of privileges their grantor may no longer grant (it lost the
    /// grant option): (grantee, grantor, those privileges).
    pub fn dependent_grants(&self, relation: u64) -> Vec<(u32, u32, Privileges)> {
        self.grants
            .iter()
            .filter(|g| g.relation == relation)
            .filter_map(|g| {
                let lost = g.privileges.minus(self.grantable(g.grantor, relation));
                (!lost.is_empty()).then_some((g.grantee, g.grantor, lost))
            })
            .collect()
    }

    /// Revokes `privileges` on `relation` from `grantee`, as granted by `grantor`; with
    /// `grant_option_only`, only the right to grant them.
    pub fn revoke(
        &mut self,
        relation: u64,
        grantee: u32,
        grantor: u32,
        privileges: Privileges,
        grant_option_only: bool,
    ) {
        for g in self
            .grants
            .iter_mut()
            .filter(|g| g.relation == relation && g.grantee == grantee && g.grantor == grantor)
        {
            g.grantable = g.grantable.minus(privileges);
            if !grant_option_only {
                g.privileges = g.privileges.minus(privileges);
            }
        }
        self.grants.retain(|g| !g.privileges.is_empty());
    }
}

/// A map as a list of (key, value) pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K, V, S>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize,
        V: Serialize,
        S: Serializer,
    {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_roles() -> (Access, u32, u32, u32) {
        let mut access = Access::default();
        let analysts = access.add_role(RoleDef::new("analysts"));
        let alice = access.add_role(RoleDef {
            login: true,
            ..RoleDef::new("alice")
        });
        let bob = access.add_role(RoleDef {
            login: true,
            inherit: false,
            ..RoleDef::new("bob")
        });
        for member in [alice, bob] {
            access.members.push(Membership {
                role: analysts,
                member,
                admin: false,
                grantor: BOOTSTRAP_SUPERUSER,
            });
        }
        (access, analysts, alice, bob)
    }

    #[test]
    fn privileges_come_from_grants_inherited_roles_and_public() {
        let (mut access, analysts, alice, bob) = with_roles();
        assert_eq!(analysts, FIRST_ROLE_OID);
        access.grant(7, analysts, BOOTSTRAP_SUPERUSER, Privileges::SELECT, false);
        access.grant(7, PUBLIC, BOOTSTRAP_SUPERUSER, Privileges::INSERT, false);
        assert_eq!(
            access.privileges(alice, 7),
            Privileges::SELECT.union(Privileges::INSERT)
        );
        // Bob does not inherit: only PUBLIC's.
        assert_eq!(access.privileges(bob, 7), Privileges::INSERT);
        assert!(access.is_member(bob, analysts));
        assert_eq!(access.privileges(alice, 8), Privileges::NONE);
        assert_eq!(
            access.privileges(BOOTSTRAP_SUPERUSER, 8),
            Privileges::ALL,
            "superusers hold everything"
        );
    }

    #[test]
    fn owners_hold_everything_and_dropping_forgets() {
        let (mut access, analysts, alice, _) = with_roles();
        access.set_owner(9, analysts);
        assert_eq!(access.privileges(alice, 9), Privileges::ALL);
        assert!(access.owns(alice, 9));
        access.grant(9, alice, analysts, Privileges::SELECT, true);
        access.forget_relation(9);
        assert_eq!(access.owner(9), BOOTSTRAP_SUPERUSER);
        assert!(access.grants.is_empty());
    }

    #[test]
    fn revoke_takes_privileges_back_and_removes_empty_grants() {
        let (mut access, _, alice, _) = with_roles();
        access.grant(
            7,
            alice,
            BOOTSTRAP_SUPERUSER,
            Privileges::SELECT.union(Privileges::DELETE),
            true,
        );
        access.revoke(7, alice, BOOTSTRAP_SUPERUSER, Privileges::DELETE, true);
        assert_eq!(access.grantable(alice, 7), Privileges::SELECT);
        assert_eq!(
            access.privileges(alice, 7),
            Privileges::SELECT.union(Privileges::DELETE)
        );
        access.revoke(7, alice, BOOTSTRAP_SUPERUSER, Privileges::ALL, false);
        assert!(access.grants.is_empty());
    }

    #[test]
    fn removing_a_role_removes_its_memberships_and_grants() {
        let (mut access, analysts, alice, _) = with_roles();
        access.grant(7, alice, BOOTSTRAP_SUPERUSER, Privileges::SELECT, false);
        access.remove_role(alice);
        assert!(access.role_named("alice").is_none());
        assert!(access.members.iter().all(|m| m.member != alice));
        assert!(access.grants.is_empty());
        assert!(access.role(analysts).is_some());
    }
}
