//! What a list shows when it has nothing in it: a sentence, and the next step when there is one.

use leptos::prelude::*;

pub fn empty_state(message: &str, action: Option<(&str, String)>) -> impl IntoView {
    let message = message.to_owned();
    let action = action.map(|(label, href)| {
        let label = label.to_owned();
        view! { <a class="button" href=href>{label}</a> }
    });
    view! {
        <div class="empty">
            <p>{message}</p>
            {action}
        </div>
    }
}
