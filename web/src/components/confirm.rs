//! The confirmation step of a destructive action: a page of its own (so it works without
//! JavaScript) that says what will happen and POSTs only when the button is pressed.

use leptos::prelude::*;

pub struct Confirm {
    /// What will happen, in one sentence.
    pub question: String,
    /// Consequences worth reading before pressing the button.
    pub detail: Option<String>,
    /// Where the form POSTs.
    pub action: String,
    pub button: &'static str,
    pub cancel_href: String,
    pub csrf: String,
}

pub fn confirm_body(c: Confirm) -> impl IntoView {
    let Confirm { question, detail, action, button, cancel_href, csrf } = c;
    view! {
        <section class="panel confirm">
            <p class="confirm-question">{question}</p>
            {detail.map(|d| view! { <p>{d}</p> })}
            <form method="post" action=action class="actions">
                <input type="hidden" name="csrf_token" value=csrf />
                <button type="submit" class="button button--danger">{button}</button>
                <a class="button button--quiet" href=cancel_href>"Cancel"</a>
            </form>
        </section>
    }
}
