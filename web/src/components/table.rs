//! Data tables with filter-preserving links for sorting and paging.
//!
//! Long lists (customers, sites, audit entries) are paged by the store's cursor, newest first;
//! the pager's links keep the filters. Short lists that are fetched whole (a customer's sites,
//! the portal's sites) can be sorted by clicking a column header: [`Sort`] reads `sort` and
//! `dir` from the query and [`Sort::apply`] orders the rows.

use leptos::prelude::*;
use uuid::Uuid;

/// A path plus the query parameters a list was opened with (its filters), so links to other
/// pages or orders of the same list keep them. Empty values are left out of URLs.
#[derive(Debug, Clone)]
pub struct Link {
    path: String,
    params: Vec<(String, String)>,
}

impl Link {
    pub fn new(path: &str) -> Self {
        Self { path: path.to_owned(), params: Vec::new() }
    }

    pub fn param(mut self, key: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value.map(|v| v.to_string()).filter(|v| !v.is_empty()) {
            self.params.push((key.to_owned(), v));
        }
        self
    }

    /// This link with `key` set to `value` (replacing any earlier value), as a URL.
    pub fn with(&self, key: &str, value: &str) -> String {
        let mut params: Vec<(String, String)> = self.params.iter().filter(|(k, _)| k != key).cloned().collect();
        params.push((key.to_owned(), value.to_owned()));
        Self { path: self.path.clone(), params }.href()
    }

    pub fn href(&self) -> String {
        if self.params.is_empty() {
            return self.path.clone();
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            query.append_pair(k, v);
        }
        format!("{}?{}", self.path, query.finish())
    }
}

pub struct Column {
    pub label: &'static str,
    /// The `sort` value of this column, when the table can be sorted by it.
    pub sort_key: Option<&'static str>,
}

impl Column {
    pub const fn plain(label: &'static str) -> Self {
        Self { label, sort_key: None }
    }

    pub const fn sortable(label: &'static str, key: &'static str) -> Self {
        Self { label, sort_key: Some(key) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub key: String,
    pub descending: bool,
}

impl Sort {
    /// The order asked for in the query, or `default` when it names no known column.
    pub fn from_query(sort: Option<&str>, dir: Option<&str>, columns: &[Column], default: &str) -> Self {
        let key = sort.filter(|s| columns.iter().any(|c| c.sort_key == Some(*s))).unwrap_or(default).to_owned();
        Self { key, descending: dir == Some("desc") }
    }

    /// Orders `rows` by the text `key_of(row, column)` gives for the sorted column.
    pub fn apply<T>(&self, rows: &mut [T], key_of: impl Fn(&T, &str) -> String) {
        rows.sort_by_cached_key(|row| key_of(row, &self.key).to_lowercase());
        if self.descending {
            rows.reverse();
        }
    }
}

/// A table; `sorting` makes the sortable headers links (keeping the list's filters).
pub fn table(caption: &str, columns: &[Column], sorting: Option<(&Sort, &Link)>, rows: Vec<AnyView>) -> impl IntoView {
    let caption = caption.to_owned();
    let headers = columns
        .iter()
        .map(|col| {
            let label = col.label;
            match (col.sort_key, sorting) {
                (Some(key), Some((sort, link))) => {
                    let active = sort.key == key;
                    let aria = match (active, sort.descending) {
                        (true, false) => "ascending",
                        (true, true) => "descending",
                        (false, _) => "none",
                    };
                    let next_dir = if active && !sort.descending { "desc" } else { "asc" };
                    let href = Link { path: link.path.clone(), params: link.params.clone() }
                        .param("sort", Some(key))
                        .with("dir", next_dir);
                    let arrow = match aria {
                        "ascending" => " ▲",
                        "descending" => " ▼",
                        _ => "",
                    };
                    view! {
                        <th scope="col" aria-sort=aria>
                            <a href=href>{label}<span aria-hidden="true">{arrow}</span></a>
                        </th>
                    }
                    .into_any()
                }
                _ => view! { <th scope="col">{label}</th> }.into_any(),
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">{caption}</caption>
                <thead>
                    <tr>{headers}</tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// "Next page" (and back to the first) for a cursor-paged list.
pub fn pager(link: &Link, next_cursor: Option<Uuid>, on_first_page: bool) -> impl IntoView {
    let first = (!on_first_page).then(|| {
        let mut first = link.clone();
        first.params.retain(|(k, _)| k != "after");
        view! { <a class="button button--quiet" href=first.href()>"← First page"</a> }
    });
    let next = next_cursor.map(|c| {
        let href = link.with("after", &c.to_string());
        view! { <a class="button button--quiet" href=href rel="next">"Next page →"</a> }
    });
    (first.is_some() || next.is_some()).then(|| {
        view! { <nav class="pager" aria-label="Pagination">{first}{next}</nav> }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_encode_values() {
        let link = Link::new("/admin/customers").param("q", Some("a&b c")).param("status", None::<String>);
        assert_eq!(link.href(), "/admin/customers?q=a%26b+c");
        assert_eq!(link.with("after", "x"), "/admin/customers?q=a%26b+c&after=x");
    }

    #[test]
    fn unknown_sort_columns_fall_back_to_the_default() {
        let cols = [Column::sortable("Name", "name"), Column::plain("Image")];
        let sort = Sort::from_query(Some("image"), Some("desc"), &cols, "name");
        assert_eq!(sort, Sort { key: "name".into(), descending: true });
        let mut rows = vec!["b", "A", "c"];
        sort.apply(&mut rows, |r, _| r.to_string());
        assert_eq!(rows, ["c", "b", "A"]);
    }
}
