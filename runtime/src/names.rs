//! Names and labels of the Docker objects Berth owns. Every name is built here from UUIDs and
//! the configured prefix (itself a strict `[a-z][a-z0-9]*`), never from user input, so nothing
//! a customer types reaches a Docker object name.

use std::collections::HashMap;

use uuid::Uuid;

pub const LABEL_MANAGED: &str = "berth.managed";
pub const LABEL_INSTANCE: &str = "berth.instance";
pub const LABEL_SITE: &str = "berth.site";
pub const LABEL_CUSTOMER: &str = "berth.customer";
/// Hash of the container specification, to tell an outdated container from a current one.
pub const LABEL_SPEC: &str = "berth.spec";
/// The port the site listens on inside its container.
pub const LABEL_PORT: &str = "berth.port";
/// A restore drill's scratch container or volume: the drill's id. Such objects carry no
/// `berth.site`, so nothing that works on sites (metrics, volumes, purges) mistakes them for
/// the site's own.
pub const LABEL_DRILL: &str = "berth.drill";
/// When a drill's scratch object may be removed by whoever finds it (unix seconds): the
/// reconciler's orphan pass leaves a drill's container alone until then.
pub const LABEL_DRILL_EXPIRES: &str = "berth.drill.expires";

/// Names for one Berth installation (one `BERTH_DOCKER_PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    pub fn instance(&self) -> &str {
        &self.prefix
    }

    /// `berth-<site id>`: the one container of a site. Deterministic, so two reconcilers racing
    /// to create it collide on the name instead of making two.
    pub fn container(&self, site: Uuid) -> String {
        format!("{}-{}", self.prefix, site)
    }

    /// The replacement container of an update, until it has proved healthy.
    pub fn next_container(&self, site: Uuid) -> String {
        format!("{}-{}-next", self.prefix, site)
    }

    /// `berth-c-<short id>`: one bridge network per customer. The short id is the random tail
    /// of the UUIDv7 (its head is a timestamp, shared by customers made in the same millisecond).
    pub fn network(&self, customer: Uuid) -> String {
        let simple = customer.simple().to_string();
        format!("{}-c-{}", self.prefix, &simple[simple.len() - 16..])
    }

    /// The site's data volume, kept when the site is deleted unless a purge is asked for.
    pub fn volume(&self, site: Uuid) -> String {
        format!("{}-data-{}", self.prefix, site)
    }

    /// A fresh data volume of a site (a restore fills it, then the site switches onto it):
    /// the default name plus a generation, itself made by Berth (`[a-z0-9]`, at most 32).
    pub fn fresh_volume(&self, site: Uuid, generation: &str) -> String {
        format!("{}-data-{}-{}", self.prefix, site, generation)
    }

    /// The scratch container and the scratch volume of restore drill `drill`.
    pub fn drill(&self, drill: Uuid) -> String {
        format!("{}-drill-{}", self.prefix, drill)
    }

    /// Labels of a drill's scratch objects: this installation's, the customer's, the drill's
    /// id and the instant after which they count as leftovers.
    pub fn drill_labels(&self, drill: Uuid, customer: Uuid, expires_unix: i64) -> HashMap<String, String> {
        let mut labels = self.customer_labels(customer);
        labels.insert(LABEL_DRILL.to_owned(), drill.to_string());
        labels.insert(LABEL_DRILL_EXPIRES.to_owned(), expires_unix.to_string());
        labels
    }

    /// The Docker filter that finds this installation's drill objects.
    pub fn drill_filter(&self) -> Vec<String> {
        let mut filter = self.label_filter();
        filter.push(LABEL_DRILL.to_owned());
        filter
    }

    /// Labels every object of this installation carries.
    pub fn base_labels(&self) -> HashMap<String, String> {
        HashMap::from([(LABEL_MANAGED.to_owned(), "true".to_owned()), (LABEL_INSTANCE.to_owned(), self.prefix.clone())])
    }

    pub fn customer_labels(&self, customer: Uuid) -> HashMap<String, String> {
        let mut labels = self.base_labels();
        labels.insert(LABEL_CUSTOMER.to_owned(), customer.to_string());
        labels
    }

    pub fn site_labels(&self, site: Uuid, customer: Uuid) -> HashMap<String, String> {
        let mut labels = self.customer_labels(customer);
        labels.insert(LABEL_SITE.to_owned(), site.to_string());
        labels
    }

    /// The Docker filter that finds this installation's objects and nothing else.
    pub fn label_filter(&self) -> Vec<String> {
        vec![format!("{LABEL_MANAGED}=true"), format!("{LABEL_INSTANCE}={}", self.prefix)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_distinct_per_customer() {
        let n = Names::new("berth");
        let site = Uuid::now_v7();
        assert_eq!(n.container(site), format!("berth-{site}"));
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert_ne!(n.network(a), n.network(b));
        assert!(n.network(a).starts_with("berth-c-"));
        assert_eq!(n.network(a).len(), "berth-c-".len() + 16);
        assert_eq!(n.fresh_volume(site, "g1"), format!("berth-data-{site}-g1"));
        assert_ne!(n.fresh_volume(site, "g1"), n.volume(site));
    }
}
