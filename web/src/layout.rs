//! The frame around every page: the HTML document, the header with the area's navigation and
//! the sign-out button, the flash message, and the page title.
//!
//! A new page in an existing area adds nothing here; a new section of the admin console (flows,
//! alerts, backups...) adds one [`NavItem`] to [`ADMIN_NAV`].

use axum::response::Html;
use leptos::prelude::*;

use crate::components::flash::{flash_banner, Flash};
use crate::STYLESHEET_PATH;

/// The two signed-in areas. The area of a request follows from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Admin,
    Portal,
}

impl Area {
    pub fn from_path(path: &str) -> Option<Area> {
        let under = |base: &str| path == base || path.starts_with(&format!("{base}/"));
        if under("/admin") {
            Some(Area::Admin)
        } else if under("/portal") {
            Some(Area::Portal)
        } else {
            None
        }
    }

    /// Where the area starts (and where a sign-in lands).
    pub fn home(self) -> &'static str {
        match self {
            Area::Admin => "/admin",
            Area::Portal => "/portal",
        }
    }

    pub fn login(self) -> &'static str {
        match self {
            Area::Admin => "/admin/login",
            Area::Portal => "/portal/login",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Area::Admin => "Admin console",
            Area::Portal => "Customer portal",
        }
    }

    pub fn nav(self) -> &'static [NavItem] {
        match self {
            Area::Admin => ADMIN_NAV,
            Area::Portal => PORTAL_NAV,
        }
    }

    /// A path inside this area: `area.path("/account")` is `/admin/account` or `/portal/account`.
    pub fn path(self, rest: &str) -> String {
        format!("{}{rest}", self.home())
    }
}

/// One entry of an area's navigation. `href` is also the prefix that marks it current.
pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
}

pub const ADMIN_NAV: &[NavItem] = &[
    NavItem { label: "Dashboard", href: "/admin" },
    NavItem { label: "Customers", href: "/admin/customers" },
    NavItem { label: "Sites", href: "/admin/sites" },
    NavItem { label: "Backups", href: "/admin/backups" },
    NavItem { label: "Plans", href: "/admin/plans" },
    NavItem { label: "Flows", href: "/admin/flows" },
    NavItem { label: "Jobs", href: "/admin/jobs" },
    NavItem { label: "Alerts", href: "/admin/alerts" },
    NavItem { label: "Incidents", href: "/admin/incidents" },
    NavItem { label: "Audit log", href: "/admin/audit" },
    NavItem { label: "Sign-in limits", href: "/admin/sign-in-limits" },
    NavItem { label: "Account", href: "/admin/account" },
];

pub const PORTAL_NAV: &[NavItem] = &[
    NavItem { label: "My sites", href: "/portal" },
    NavItem { label: "Alerts", href: "/portal/alerts" },
    NavItem { label: "Account", href: "/portal/account" },
];

/// What the header of a signed-in page shows.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub area: Area,
    pub email: String,
    pub csrf: String,
    /// The request path, to mark the current navigation entry.
    pub path: String,
    pub flash: Option<Flash>,
}

/// The navigation entry a path belongs to: the longest matching prefix, so `/admin/sites/1`
/// marks "Sites" and `/admin` alone marks "Dashboard".
fn current_entry(area: Area, path: &str) -> Option<&'static str> {
    area.nav()
        .iter()
        .filter(|item| path == item.href || path.starts_with(&format!("{}/", item.href)))
        .max_by_key(|item| item.href.len())
        .map(|item| item.href)
}

/// Renders a complete HTML document around `body`.
pub fn document(title: &str, body: impl IntoView + 'static) -> Html<String> {
    document_refreshing(title, body, None)
}

/// [`document`] that the browser reloads every `refresh` seconds (a page of live state, such as
/// the alerts, stays current without JavaScript).
pub fn document_refreshing(title: &str, body: impl IntoView + 'static, refresh: Option<u32>) -> Html<String> {
    let title = format!("{title} · Berth");
    let refresh = refresh.map(|s| view! { <meta http-equiv="refresh" content=s.to_string() /> });
    let view = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <title>{title}</title>
                <link rel="stylesheet" href=STYLESHEET_PATH />
                {refresh}
            </head>
            <body>
                <a class="skip-link" href="#main">"Skip to content"</a>
                {body}
            </body>
        </html>
    };
    // Rendering happens under a throwaway reactive owner: nothing here is reactive, but Leptos
    // expects one to exist while views are built.
    let owner = Owner::new();
    let html = owner.with(|| view.to_html());
    Html(format!("<!DOCTYPE html>{html}"))
}

/// A page outside the signed-in areas (sign-in, not found, the public pages): a slim header,
/// a narrow column.
pub fn plain_page(title: &str, body: impl IntoView + 'static) -> Html<String> {
    let heading = title.to_owned();
    document(
        title,
        view! {
            <header class="topbar topbar--plain">
                <a class="brand" href="/">"Berth"</a>
            </header>
            <main id="main" class="narrow">
                <h1>{heading}</h1>
                {body}
            </main>
        },
    )
}

/// A page of the admin console or the customer portal.
pub fn page(chrome: Chrome, title: &str, body: impl IntoView + 'static) -> Html<String> {
    page_refreshing(chrome, title, body, None)
}

/// [`page`] that the browser reloads every `refresh` seconds.
pub fn page_refreshing(
    chrome: Chrome,
    title: &str,
    body: impl IntoView + 'static,
    refresh: Option<u32>,
) -> Html<String> {
    let Chrome { area, email, csrf, path, flash } = chrome;
    let current = current_entry(area, &path);
    let nav = area
        .nav()
        .iter()
        .map(|item| {
            let aria_current = (Some(item.href) == current).then_some("page");
            view! { <li><a href=item.href aria-current=aria_current>{item.label}</a></li> }
        })
        .collect_view();
    let heading = title.to_owned();
    document_refreshing(
        title,
        view! {
            <header class="topbar">
                <a class="brand" href=area.home()>"Berth" <span class="brand-area">{area.title()}</span></a>
                <nav class="mainnav" aria-label="Main">
                    <ul>{nav}</ul>
                </nav>
                <div class="who">
                    <span class="who-email">{email}</span>
                    <form method="post" action="/logout">
                        <input type="hidden" name="csrf_token" value=csrf />
                        <button type="submit" class="button button--quiet">"Sign out"</button>
                    </form>
                </div>
            </header>
            <main id="main">
                {flash_banner(flash)}
                <h1>{heading}</h1>
                {body}
            </main>
        },
        refresh,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_navigation_prefix_is_current() {
        assert_eq!(current_entry(Area::Admin, "/admin"), Some("/admin"));
        assert_eq!(current_entry(Area::Admin, "/admin/sites/abc/edit"), Some("/admin/sites"));
        assert_eq!(current_entry(Area::Portal, "/portal/sites/abc"), Some("/portal"));
        assert_eq!(current_entry(Area::Portal, "/portal/account"), Some("/portal/account"));
    }

    #[test]
    fn areas_follow_the_path() {
        assert_eq!(Area::from_path("/admin"), Some(Area::Admin));
        assert_eq!(Area::from_path("/admin/customers"), Some(Area::Admin));
        assert_eq!(Area::from_path("/administrator"), None);
        assert_eq!(Area::from_path("/portal/sites/1"), Some(Area::Portal));
        assert_eq!(Area::from_path("/"), None);
    }

    #[test]
    fn text_is_escaped() {
        let Html(html) = plain_page("<script>", view! { <p>{"a & b <i>".to_owned()}</p> });
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("a &amp; b &lt;i&gt;"), "{html}");
        assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"), "{html}");
    }
}
