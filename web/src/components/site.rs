//! How a site is shown, in the admin console and the portal alike.

use berth_core::store::sites::Site;
use berth_core::types::{DesiredState, SiteStatus};
use leptos::prelude::*;

use super::badge;
use super::table::{table, Column, Link, Sort};
use super::{when, when_opt};

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
    // What runs next to what is wanted: they differ while an update failed (the previous
    // container keeps serving) or is under way.
    let running_image = match &m.running_image {
        Some(running) if *running != m.image => view! {
            <code>{running.clone()}</code>
            <span class="muted">" — not the wanted image " <code>{m.image.clone()}</code></span>
        }
        .into_any(),
        Some(running) => view! { <code>{running.clone()}</code> }.into_any(),
        None => view! { <span class="muted">"— (no container running)"</span> }.into_any(),
    };
    let runs_as = if m.allow_root {
        "the image's user, root included: allowed by an administrator"
    } else {
        "a non-root user (the image's own, or 65534)"
    };
    view! {
        <dl class="facts">
            {customer}
            <dt>"Status"</dt>
            <dd>{badge::site_status(m.status)} {reason}</dd>
            <dt>"Image"</dt>
            <dd><code>{m.image.clone()}</code></dd>
            <dt>"Running image"</dt>
            <dd>{running_image}</dd>
            <dt>"Runs as"</dt>
            <dd>{runs_as}</dd>
            <dt>"Domains"</dt>
            <dd>{domains}</dd>
            <dt>"Environment"</dt>
            <dd>{env}</dd>
            <dt>"Created"</dt>
            <dd>{when(&m.created_at)}</dd>
        </dl>
    }
}

/// What the logs part of the operations panel shows.
pub enum Logs {
    /// Berth runs without a container runtime: there is nothing to read.
    NoRuntime,
    /// The site has no container yet (or any more).
    NoContainer,
    /// The last lines, oldest first.
    Lines(String),
    /// Reading them failed; a sentence for the page (the details went to the log).
    Failed(String),
}

/// Where a site's operation forms post: `<area>/sites/<id>/<action>`.
pub fn action_href(area_home: &str, id: uuid::Uuid, action: &str) -> String {
    format!("{area_home}/sites/{id}/{action}")
}

/// One operation button, a form of its own so it works without JavaScript.
fn op_button(action: String, csrf: &str, label: &'static str, class: &'static str) -> impl IntoView {
    view! {
        <form method="post" action=action class="inline">
            <input type="hidden" name="csrf_token" value=csrf.to_owned() />
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

/// The "Operations and logs" panel: what the site should be doing, what the runtime last saw,
/// the buttons that change it (start or stop by desired state; restart acts on a running
/// container), and the container's last lines of output.
pub fn operations_panel(site: &Site, area_home: &str, csrf: &str, logs: Logs) -> impl IntoView {
    let m = &site.model;
    let id = m.id;
    let buttons = if m.status == SiteStatus::Deleting {
        view! { <p class="muted">"The site is being deleted."</p> }.into_any()
    } else {
        let start_or_stop = match m.desired_state {
            DesiredState::Stopped => op_button(action_href(area_home, id, "start"), csrf, "Start", "button").into_any(),
            DesiredState::Running => {
                op_button(action_href(area_home, id, "stop"), csrf, "Stop", "button button--secondary").into_any()
            }
        };
        let restart = (m.status == SiteStatus::Running)
            .then(|| op_button(action_href(area_home, id, "restart"), csrf, "Restart", "button button--secondary"));
        view! { <div class="actions">{start_or_stop}{restart}</div> }.into_any()
    };
    let text = |v: &Option<String>| match v {
        Some(v) => view! { <code>{v.clone()}</code> }.into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    };
    // Docker's ids are 64 hex digits; the first 12 are what `docker ps` shows.
    let container = m.container_id.as_ref().map(|c| clip_id(c));
    let last_error =
        m.last_error.clone().map(|e| view! { <dt>"Last error"</dt><dd><pre class="error-text">{e}</pre></dd> });
    let reason = m.status_reason.clone().map(|r| view! { <span class="muted">" — " {r}</span> });
    let logs = match logs {
        Logs::NoRuntime => {
            view! { <p class="muted">"No container runtime is configured, so there are no logs to show."</p> }
                .into_any()
        }
        Logs::NoContainer => view! { <p class="muted">"The site has no container yet."</p> }.into_any(),
        Logs::Lines(lines) if lines.trim().is_empty() => {
            view! { <p class="muted">"The container has written nothing yet."</p> }.into_any()
        }
        Logs::Lines(lines) => {
            view! { <pre class="logs" tabindex="0" aria-label="Container log">{lines}</pre> }.into_any()
        }
        Logs::Failed(message) => view! { <p class="field-error" role="alert">{message}</p> }.into_any(),
    };
    view! {
        <section class="panel stack" aria-labelledby="ops-title" id="operations">
            <h2 id="ops-title">"Operations and logs"</h2>
            {buttons}
            <dl class="facts">
                <dt>"Wanted"</dt>
                <dd>{sea_orm::ActiveEnum::to_value(&m.desired_state)}</dd>
                <dt>"Status"</dt>
                <dd>{badge::site_status(m.status)} {reason}</dd>
                <dt>"Container"</dt>
                <dd>{text(&container)}</dd>
                <dt>"Address"</dt>
                <dd>{text(&m.address)}</dd>
                <dt>"Health"</dt>
                <dd>{m.health.clone().unwrap_or_else(|| "—".to_owned())}</dd>
                <dt>"Restarts"</dt>
                <dd>{m.restart_count}</dd>
                {last_error}
                <dt>"Observed"</dt>
                <dd>{when_opt(&m.observed_at)}</dd>
            </dl>
            <h3 id="logs-title">"Last 100 lines of output"</h3>
            {logs}
        </section>
    }
}

fn clip_id(id: &str) -> String {
    id.chars().take(12).collect()
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
