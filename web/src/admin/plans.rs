//! Plans: what each offers, and its backup schedule and GFS retention (editable); and a site's
//! own overrides of them. The store (`store::backup_policy`) validates: cron expressions with
//! the scheduler's parser, retention counts 0–1000.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_core::entities::plans;
use berth_core::store::{self, backup_policy::Effective, backup_policy::Settings};
use berth_core::FieldError;
use leptos::prelude::*;
use serde::Deserialize;

use super::parse_id;
use crate::auth::PageCtx;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, error_summary, Field, FieldErrors};
use crate::components::table::{table, Column};
use crate::error::{PageError, PageResult};
use crate::forms::PostForm;
use crate::layout::page;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/plans", get(list))
        .route("/admin/plans/{id}", get(edit_form).post(update))
        .route("/admin/sites/{id}/backup-policy", get(site_form).post(site_update))
}

const KEEPS: [(&str, &str); 5] = [
    ("keep_hourly", "Hourly copies"),
    ("keep_daily", "Daily copies"),
    ("keep_weekly", "Weekly copies"),
    ("keep_monthly", "Monthly copies"),
    ("keep_yearly", "Yearly copies"),
];

/// "24 h · 7 d · 4 w · 12 m · 10 y".
pub(crate) fn retention_summary(e: &Effective) -> String {
    format!(
        "{} h · {} d · {} w · {} m · {} y",
        e.keep_hourly, e.keep_daily, e.keep_weekly, e.keep_monthly, e.keep_yearly
    )
}

async fn list(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    ctx.caller.require_admin()?;
    let plans = store::plans::list(&state.db).await?;
    let rows = plans
        .iter()
        .map(|p| {
            let e = Effective::of_plan(p);
            let href = format!("/admin/plans/{}", p.id);
            view! {
                <tr>
                    <th scope="row"><a href=href>{p.name.clone()}</a></th>
                    <td>{format!("{} sites · {} MB memory · {} MB storage", p.max_sites, p.memory_mb, p.storage_mb)}</td>
                    <td><code>{e.backup_cron.clone()}</code></td>
                    <td><code>{e.backup_verify_cron.clone()}</code></td>
                    <td>{retention_summary(&e)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns = [
        Column::plain("Plan"),
        Column::plain("Limits"),
        Column::plain("Backups (cron, UTC)"),
        Column::plain("Verified daily (cron, UTC)"),
        Column::plain("Keeps"),
    ];
    let body = view! {
        <p class="muted">"Each site backs up on its plan's schedule unless the site overrides it (on the site's page). Retention keeps the newest good backup of each of the last hours, days, weeks, months and years that have one."</p>
        {table("Plans", &columns, None, rows)}
    };
    Ok(page(ctx.chrome(), "Plans", body).into_response())
}

/// The form's text, as typed (numbers stay text until the store sees them).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct BackupForm {
    backup_cron: String,
    backup_verify_cron: String,
    keep_hourly: String,
    keep_daily: String,
    keep_weekly: String,
    keep_monthly: String,
    keep_yearly: String,
}

impl BackupForm {
    fn from_settings(s: &Settings) -> Self {
        let n = |v: Option<i32>| v.map(|n| n.to_string()).unwrap_or_default();
        Self {
            backup_cron: s.backup_cron.clone().unwrap_or_default(),
            backup_verify_cron: s.backup_verify_cron.clone().unwrap_or_default(),
            keep_hourly: n(s.keep_hourly),
            keep_daily: n(s.keep_daily),
            keep_weekly: n(s.keep_weekly),
            keep_monthly: n(s.keep_monthly),
            keep_yearly: n(s.keep_yearly),
        }
    }

    fn from_effective(e: &Effective) -> Self {
        Self {
            backup_cron: e.backup_cron.clone(),
            backup_verify_cron: e.backup_verify_cron.clone(),
            keep_hourly: e.keep_hourly.to_string(),
            keep_daily: e.keep_daily.to_string(),
            keep_weekly: e.keep_weekly.to_string(),
            keep_monthly: e.keep_monthly.to_string(),
            keep_yearly: e.keep_yearly.to_string(),
        }
    }

    fn value(&self, name: &str) -> String {
        match name {
            "backup_cron" => self.backup_cron.clone(),
            "backup_verify_cron" => self.backup_verify_cron.clone(),
            "keep_hourly" => self.keep_hourly.clone(),
            "keep_daily" => self.keep_daily.clone(),
            "keep_weekly" => self.keep_weekly.clone(),
            "keep_monthly" => self.keep_monthly.clone(),
            _ => self.keep_yearly.clone(),
        }
    }

    /// The settings typed; a blank field is `None` ("the plan's" on a site; required on a
    /// plan). A count that is not a number is a field error here; the rest is the store's.
    fn settings(&self, blank_allowed: bool) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut text = |name: &str, v: &str| {
            let v = v.trim();
            if v.is_empty() && !blank_allowed {
                errors.push(FieldError::new(name, "is required"));
            }
            (!v.is_empty()).then(|| v.to_owned())
        };
        let backup_cron = text("backup_cron", &self.backup_cron);
        let backup_verify_cron = text("backup_verify_cron", &self.backup_verify_cron);
        let mut number = |name: &str, v: &str| -> Option<i32> {
            let v = v.trim();
            if v.is_empty() {
                if !blank_allowed {
                    errors.push(FieldError::new(name, "is required"));
                }
                return None;
            }
            match v.parse::<i32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(FieldError::new(name, "must be a whole number"));
                    None
                }
            }
        };
        let settings = Settings {
            backup_cron,
            backup_verify_cron,
            keep_hourly: number("keep_hourly", &self.keep_hourly),
            keep_daily: number("keep_daily", &self.keep_daily),
            keep_weekly: number("keep_weekly", &self.keep_weekly),
            keep_monthly: number("keep_monthly", &self.keep_monthly),
            keep_yearly: number("keep_yearly", &self.keep_yearly),
        };
        if errors.is_empty() {
            return Ok(settings);
        }
        // Report the store's findings on the other fields too, so one round trip shows all.
        if let Err(berth_core::Error::Validation(more)) = settings.validate() {
            errors.extend(more);
        }
        Err(errors)
    }
}

/// The fields of a backup form; `plan_values` (on a site's form) are shown as hints: what a
/// blank field means.
fn backup_fields(form: &BackupForm, errors: &FieldErrors, plan_values: Option<&Effective>) -> impl IntoView {
    let hint = |name: &str, default_hint: &str| match plan_values {
        Some(e) => format!("Blank: the plan's, {}.", BackupForm::from_effective(e).value(name)),
        None => default_hint.to_owned(),
    };
    let required = plan_values.is_none();
    let field = |name: &str, label: &str, default_hint: &str| {
        let f = Field::new(name, label).value(form.value(name)).hint(hint(name, default_hint)).error(errors.get(name));
        if required {
            f.required()
        } else {
            f
        }
    };
    let keeps =
        KEEPS.iter().map(|(name, label)| field(name, label, "0 to 1000.").numeric().render().into_any()).collect_view();
    view! {
        {field("backup_cron", "Backup schedule", "Five-field cron, UTC: minute hour day month weekday. 0 * * * * is every hour.").autocomplete("off").render()}
        {field("backup_verify_cron", "Verified daily backup", "Five-field cron, UTC. 30 3 * * * is 03:30 every day.").autocomplete("off").render()}
        <fieldset class="stack">
            <legend>"Retention: the newest good backup of each of the last …"</legend>
            {keeps}
        </fieldset>
    }
}

fn plan_body(ctx: &PageCtx, plan: &plans::Model, form: &BackupForm, errors: FieldErrors) -> impl IntoView {
    let action = format!("/admin/plans/{}", plan.id);
    view! {
        {error_summary(&errors)}
        <form method="post" action=action class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            <h2>"Backups"</h2>
            {backup_fields(form, &errors, None)}
            <p class="hint">"Daily copies also set the plan's backup retention days."</p>
            <div class="actions">
                <button type="submit" class="button">"Save backup settings"</button>
                <a class="button button--quiet" href="/admin/plans">"Cancel"</a>
            </div>
        </form>
    }
}

async fn find_plan(state: &WebState, id: &str) -> Result<plans::Model, PageError> {
    store::plans::find(&state.db, id).await?.ok_or(PageError::NotFound)
}

async fn edit_form(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    ctx.caller.require_admin()?;
    let plan = find_plan(&state, &id).await?;
    let form = BackupForm::from_effective(&Effective::of_plan(&plan));
    let body = plan_body(&ctx, &plan, &form, FieldErrors::none());
    Ok(page(ctx.chrome(), &format!("Plan {}", plan.name), body).into_response())
}

async fn update(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<BackupForm>,
) -> PageResult {
    let plan = find_plan(&state, &id).await?;
    let result = match form.settings(false) {
        Ok(settings) => store::backup_policy::update_plan(&state.db, &ctx.caller, &plan.id, settings).await,
        Err(fields) => Err(berth_core::Error::Validation(fields)),
    };
    let errors = match result {
        Ok(p) => {
            return ctx.redirect("/admin/plans", Flash::success(format!("Backup settings of {} saved.", p.name))).await
        }
        Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
        Err(e) => return Err(e.into()),
    };
    let body = plan_body(&ctx, &plan, &form, errors);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), &format!("Plan {}", plan.name), body)).into_response())
}

fn site_body(
    ctx: &PageCtx,
    site_id: uuid::Uuid,
    plan_values: &Effective,
    in_force: &Effective,
    form: &BackupForm,
    errors: FieldErrors,
) -> impl IntoView {
    let href = format!("/admin/sites/{site_id}");
    let action = format!("{href}/backup-policy");
    view! {
        <section class="panel" aria-labelledby="b-force">
            <h2 id="b-force">"In force"</h2>
            <dl class="facts">
                <dt>"Backups"</dt><dd><code>{in_force.backup_cron.clone()}</code></dd>
                <dt>"Verified daily"</dt><dd><code>{in_force.backup_verify_cron.clone()}</code></dd>
                <dt>"Keeps"</dt><dd>{retention_summary(in_force)}</dd>
            </dl>
        </section>
        {error_summary(&errors)}
        <form method="post" action=action class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            <h2>"This site's overrides"</h2>
            {backup_fields(form, &errors, Some(plan_values))}
            <div class="actions">
                <button type="submit" class="button">"Save overrides"</button>
                <a class="button button--quiet" href=href>"Cancel"</a>
            </div>
        </form>
    }
}

async fn site_form(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    ctx.caller.require_admin()?;
    let id = parse_id(&id)?;
    let policy = store::backup_policy::site(&state.db, &ctx.caller, id).await?;
    let plan = find_plan(&state, &policy.plan_id).await?;
    let form = BackupForm::from_settings(&policy.overrides);
    let body = site_body(&ctx, id, &Effective::of_plan(&plan), &policy.effective, &form, FieldErrors::none());
    Ok(page(ctx.chrome(), "Site backup settings", body).into_response())
}

async fn site_update(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<BackupForm>,
) -> PageResult {
    let id = parse_id(&id)?;
    let result = match form.settings(true) {
        Ok(settings) => store::backup_policy::set_site_overrides(&state.db, &ctx.caller, id, settings).await,
        Err(fields) => Err(berth_core::Error::Validation(fields)),
    };
    let errors = match result {
        Ok(_) => {
            return ctx.redirect(&format!("/admin/sites/{id}"), Flash::success("Backup settings saved.")).await;
        }
        Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
        Err(e) => return Err(e.into()),
    };
    let policy = store::backup_policy::site(&state.db, &ctx.caller, id).await?;
    let plan = find_plan(&state, &policy.plan_id).await?;
    let body = site_body(&ctx, id, &Effective::of_plan(&plan), &policy.effective, &form, errors);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), "Site backup settings", body)).into_response())
}
