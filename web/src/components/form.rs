//! Form fields with labels, hints and inline errors.
//!
//! Errors come from the store as `berth_core::Error::Validation(Vec<FieldError>)`, with field
//! names as the API reports them (`email`, `domains[0]`, `env.PORT`); [`FieldErrors`] hands each
//! field its messages, and [`error_summary`] lists them at the top of the form, as a
//! `role="alert"` region, so keyboard and screen-reader users learn at once what went wrong.

use berth_core::FieldError;
use leptos::prelude::*;

/// The field errors of one submission, plus messages that belong to no field (a conflict).
#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    pub fields: Vec<FieldError>,
    pub general: Vec<String>,
}

impl FieldErrors {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn from_fields(fields: Vec<FieldError>) -> Self {
        Self { fields, general: Vec::new() }
    }

    pub fn general(message: impl Into<String>) -> Self {
        Self { fields: Vec::new(), general: vec![message.into()] }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// Every message for `field` exactly, joined into one sentence.
    pub fn get(&self, field: &str) -> Option<String> {
        let messages: Vec<&str> = self.fields.iter().filter(|e| e.field == field).map(|e| e.message.as_str()).collect();
        (!messages.is_empty()).then(|| messages.join("; "))
    }

    /// Messages for `field` and its parts (`domains`, `domains[2]`; `env`, `env.PORT`), each
    /// prefixed by `label(part)` when it names a part.
    pub fn get_nested(&self, field: &str, label: impl Fn(&str) -> String) -> Option<String> {
        let messages: Vec<String> = self
            .fields
            .iter()
            .filter_map(|e| {
                if e.field == field {
                    Some(e.message.clone())
                } else {
                    let rest = e.field.strip_prefix(field)?;
                    (rest.starts_with('[') || rest.starts_with('.')).then(|| format!("{}: {}", label(rest), e.message))
                }
            })
            .collect();
        (!messages.is_empty()).then(|| messages.join("; "))
    }
}

/// One labelled input. Build with [`Field::new`], adjust, then [`Field::render`].
pub struct Field {
    name: String,
    label: String,
    kind: &'static str,
    value: String,
    hint: Option<String>,
    error: Option<String>,
    required: bool,
    autocomplete: Option<&'static str>,
    input_mode: Option<&'static str>,
    control: Control,
}

enum Control {
    Input,
    TextArea(u32),
    Select(Vec<(String, String)>),
}

impl Field {
    pub fn new(name: &str, label: &str) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            kind: "text",
            value: String::new(),
            hint: None,
            error: None,
            required: false,
            autocomplete: None,
            input_mode: None,
            control: Control::Input,
        }
    }

    pub fn kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn error(mut self, error: Option<String>) -> Self {
        self.error = error;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn autocomplete(mut self, value: &'static str) -> Self {
        self.autocomplete = Some(value);
        self
    }

    pub fn numeric(mut self) -> Self {
        self.input_mode = Some("numeric");
        self
    }

    pub fn textarea(mut self, rows: u32) -> Self {
        self.control = Control::TextArea(rows);
        self
    }

    /// A drop-down of `(value, label)` pairs; the current value is pre-selected.
    pub fn select(mut self, options: Vec<(String, String)>) -> Self {
        self.control = Control::Select(options);
        self
    }

    pub fn render(self) -> impl IntoView {
        let id = format!("field-{}", self.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let mut described = Vec::new();
        if self.hint.is_some() {
            described.push(hint_id.clone());
        }
        if self.error.is_some() {
            described.push(error_id.clone());
        }
        let described = (!described.is_empty()).then(|| described.join(" "));
        let invalid = self.error.is_some().then_some("true");
        let class = if self.error.is_some() { "field field--invalid" } else { "field" };
        let Field { name, label, kind, value, hint, error, required, autocomplete, input_mode, control } = self;
        let control = match control {
            Control::Input => view! {
                <input
                    id=id.clone()
                    name=name
                    type=kind
                    value=value
                    required=required
                    autocomplete=autocomplete
                    inputmode=input_mode
                    aria-invalid=invalid
                    aria-describedby=described
                />
            }
            .into_any(),
            Control::TextArea(rows) => view! {
                <textarea
                    id=id.clone()
                    name=name
                    rows=rows
                    required=required
                    aria-invalid=invalid
                    aria-describedby=described
                >
                    {value}
                </textarea>
            }
            .into_any(),
            Control::Select(options) => {
                let options = options
                    .into_iter()
                    .map(|(v, l)| {
                        let selected = v == value;
                        view! { <option value=v selected=selected>{l}</option> }
                    })
                    .collect_view();
                view! {
                    <select id=id.clone() name=name required=required aria-invalid=invalid aria-describedby=described>
                        {options}
                    </select>
                }
                .into_any()
            }
        };
        view! {
            <div class=class>
                <label for=id>{label}</label>
                {control}
                {hint.map(|h| view! { <p class="hint" id=hint_id>{h}</p> })}
                {error.map(|e| view! { <p class="field-error" id=error_id>{e}</p> })}
            </div>
        }
    }
}

/// The hidden CSRF field every signed-in form carries.
pub fn csrf_input(token: &str) -> impl IntoView {
    let token = token.to_owned();
    view! { <input type="hidden" name="csrf_token" value=token /> }
}

/// "Please correct ..." at the top of a form that came back with errors.
pub fn error_summary(errors: &FieldErrors) -> impl IntoView {
    (!errors.is_empty()).then(|| {
        let general = errors.general.iter().map(|m| view! { <li>{m.clone()}</li> }).collect_view();
        let has_fields = !errors.fields.is_empty();
        view! {
            <div class="flash flash--error" role="alert">
                {has_fields.then(|| view! { <p>"Please correct the fields marked below."</p> })}
                <ul class="plain">{general}</ul>
            </div>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_errors_are_gathered_under_their_field() {
        let errors = FieldErrors::from_fields(vec![
            FieldError::new("domains[1]", "is not a valid domain"),
            FieldError::new("domainsx", "unrelated"),
            FieldError::new("name", "is required"),
        ]);
        assert_eq!(errors.get("name").as_deref(), Some("is required"));
        assert_eq!(
            errors.get_nested("domains", |part| format!("line {part}")).as_deref(),
            Some("line [1]: is not a valid domain")
        );
        assert_eq!(errors.get("email"), None);
    }
}
