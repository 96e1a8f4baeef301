//! Kubernetes RBAC, as the API server decides, over the Roles, ClusterRoles and their bindings
//! of a YAML file (`docs/rbac.yaml`): a call is allowed when a ClusterRoleBinding's role, or a
//! RoleBinding's role in the call's namespace, has a rule matching its verb, API group and
//! resource (`*` matches anything).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Call;

/// One rule of a role.
#[derive(Debug, Clone)]
pub struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

impl Rule {
    fn allows(&self, c: &Call) -> bool {
        let any = |v: &[String], x: &str| v.iter().any(|e| e == "*" || e == x);
        any(&self.groups, &c.group)
            && any(&self.resources, &c.rbac_resource())
            && any(&self.verbs, &c.verb)
    }
}

/// The effective grants of a set of bindings.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    /// From ClusterRoleBindings: every namespace and cluster-wide.
    cluster: Vec<(String, Rule)>,
    /// From RoleBindings: namespace → rules.
    namespaced: BTreeMap<String, Vec<(String, Rule)>>,
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn rules(doc: &Value) -> Vec<Rule> {
    doc["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Rule {
            groups: strs(&r["apiGroups"]),
            resources: strs(&r["resources"]),
            verbs: strs(&r["verbs"]),
        })
        .collect()
}

impl Rbac {
    /// The grants of every binding in `yaml` whose role's name `take` accepts.
    pub fn from_yaml(yaml: &str, take: impl Fn(&str) -> bool) -> Rbac {
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).expect("a YAML document"))
            .filter(|v: &Value| !v.is_null())
            .collect();
        let name = |d: &Value| d["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ns = |d: &Value| d["metadata"]["namespace"].as_str().map(str::to_string);
        let mut cluster_roles: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
        let mut roles: BTreeMap<(String, String), Vec<Rule>> = BTreeMap::new();
        for d in &docs {
            match d["kind"].as_str() {
                Some("ClusterRole") => {
                    cluster_roles.insert(name(d), rules(d));
                }
                Some("Role") => {
                    roles.insert((ns(d).expect("a Role has a namespace"), name(d)), rules(d));
                }
                _ => {}
            }
        }
        let mut out = Rbac::default();
        for d in &docs {
            let role_kind = d["roleRef"]["kind"].as_str().unwrap_or("");
            let role = d["roleRef"]["name"].as_str().unwrap_or("").to_string();
            if !take(&role) {
                continue;
            }
            match d["kind"].as_str() {
                Some("ClusterRoleBinding") => {
                    assert_eq!(role_kind, "ClusterRole", "{d}");
                    let rs = cluster_roles.get(&role).expect("bound ClusterRole exists");
                    out.cluster
                        .extend(rs.iter().cloned().map(|r| (role.clone(), r)));
                }
                Some("RoleBinding") => {
                    let n = ns(d).expect("a RoleBinding has a namespace");
                    let rs = match role_kind {
                        "Role" => roles
                            .get(&(n.clone(), role.clone()))
                            .expect("bound Role exists in the binding's namespace"),
                        _ => cluster_roles.get(&role).expect("bound ClusterRole exists"),
                    };
                    out.namespaced
                        .entry(n)
                        .or_default()
                        .extend(rs.iter().cloned().map(|r| (role.clone(), r)));
                }
                _ => {}
            }
        }
        out
    }

    /// Is the call allowed?
    pub fn allows(&self, c: &Call) -> bool {
        self.role_for(c).is_some()
    }

    /// The role that allows the call.
    pub fn role_for(&self, c: &Call) -> Option<&str> {
        if let Some((role, _)) = self.cluster.iter().find(|(_, r)| r.allows(c)) {
            return Some(role);
        }
        let ns = c.namespace.as_deref()?;
        self.namespaced
            .get(ns)?
            .iter()
            .find(|(_, r)| r.allows(c))
            .map(|(role, _)| role.as_str())
    }
}
