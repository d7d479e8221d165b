//! How a site is shown, in the admin console and the portal alike.

use berth_core::store::sites::Site;
use leptos::prelude::*;

use super::badge;
use super::table::{table, Column, Link, Sort};
use super::when;

/// The definition list of a site's settings, with every environment value masked: the page
/// says which variables exist, never what they hold.
pub fn site_facts(site: &Site, customer: Option<(String, String)>) -> impl IntoView {
    let m = &site.model;
    let domains = if site.domains.is_empty() {
        view! { <span class="muted">"none yet"</span> }.into_any()
    } else {
        let items = site.domains.iter().map(|d| view! { <li><code>{d.clone()}</code></li> }).collect_view();
        view! { <ul class="plain">{items}</ul> }.into_any()
    };
    let env = if site.env.is_empty() {
        view! { <span class="muted">"no variables"</span> }.into_any()
    } else {
        let rows = site
            .env
            .keys()
            .map(|k| view! { <li><code>{k.clone()}</code> " = " <span class="masked" aria-label="value hidden">"••••••••"</span></li> })
            .collect_view();
        view! { <ul class="plain">{rows}</ul> }.into_any()
    };
    let customer = customer.map(|(name, href)| {
        view! {
            <dt>"Customer"</dt>
            <dd><a href=href>{name}</a></dd>
        }
    });
    let reason = m.status_reason.clone().map(|r| view! { <span class="muted">" — " {r}</span> });
    view! {
        <dl class="facts">
            {customer}
            <dt>"Status"</dt>
            <dd>{badge::site_status(m.status)} {reason}</dd>
            <dt>"Image"</dt>
            <dd><code>{m.image.clone()}</code></dd>
            <dt>"Domains"</dt>
            <dd>{domains}</dd>
            <dt>"Environment"</dt>
            <dd>{env}</dd>
            <dt>"Created"</dt>
            <dd>{when(&m.created_at)}</dd>
        </dl>
    }
}

/// The place reserved for runtime operations (start, stop, restart) and logs, which arrive with
/// the site runtime; keeping it on the page now fixes where they will go.
pub fn operations_placeholder() -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="ops-title" id="operations">
            <h2 id="ops-title">"Operations and logs"</h2>
            <p class="muted">"Start, stop, restart and the container's logs will appear here once the site runtime is connected."</p>
        </section>
    }
}

pub const SITE_COLUMNS: [Column; 4] = [
    Column::sortable("Name", "name"),
    Column::plain("Domains"),
    Column::sortable("Status", "status"),
    Column::sortable("Created", "created"),
];

/// Sorts a fully loaded list of sites by one of [`SITE_COLUMNS`].
pub fn sort_sites(sites: &mut [Site], sort: &Sort) {
    sort.apply(sites, |s, key| match key {
        "status" => sea_orm::ActiveEnum::to_value(&s.model.status),
        "created" => s.model.created_at.to_rfc3339(),
        _ => s.model.name.clone(),
    });
}

/// A table of sites whose names link to `href_of(site)`.
pub fn site_table(sites: &[Site], sort: &Sort, link: &Link, href_of: impl Fn(&Site) -> String) -> impl IntoView {
    let rows = sites
        .iter()
        .map(|s| {
            let domains = s.domains.join(", ");
            view! {
                <tr>
                    <td><a href=href_of(s)>{s.model.name.clone()}</a></td>
                    <td>{domains}</td>
                    <td>{badge::site_status(s.model.status)}</td>
                    <td>{when(&s.model.created_at)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    table("Sites", &SITE_COLUMNS, Some((sort, link)), rows)
}
