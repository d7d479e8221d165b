//! The "Backups" section of a site page, in the admin console and the portal alike, and the
//! pages behind it: back up now, download a backup as a tar, restore one (a confirmation page
//! that names what will be replaced, then the restore flow's progress), and, for administrators,
//! the data volumes the site no longer uses with a discard after confirmation.
//!
//! Every action is the operation the REST API calls (`berth_ops`: `request_backup`,
//! `download_backup`, `start_restore`, `discard_volume`), scoped to the caller there, so another
//! customer's site, backup or restore answers the not-found page and nothing happens. No GET
//! changes anything: a restore starts only from the confirmation page's POST.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::{backups, site_volumes};
use berth_core::flows::restore::{Restore, Subject};
use berth_core::flows::Flow;
use berth_core::store::{self, page::Page, sites::Site};
use berth_core::types::{BackupKind, BackupStatus};
use chrono::Utc;
use leptos::prelude::*;
use sea_orm::ActiveEnum;
use uuid::Uuid;

use crate::admin::parse_id;
use crate::auth::{NoFields, PageCtx};
use crate::components::badge::{self, badge, Tone};
use crate::components::chart::Unit;
use crate::components::confirm::{confirm_body, Confirm};
use crate::components::flash::Flash;
use crate::components::table::{table, Column};
use crate::components::{clip, duration, duration_opt, when, when_opt};
use crate::error::{operation_failed, page_error, PageError, PageResult};
use crate::forms::PostForm;
use crate::layout::{page, page_refreshing};
use crate::WebState;

/// How many backups the section lists (newest first).
const LISTED: u64 = 20;
/// How many restores of the site the section links to.
const RESTORES_LISTED: usize = 5;
/// Seconds between reloads of a page that shows something running.
pub const REFRESH_SECONDS: u32 = 5;

pub fn routes() -> Router<WebState> {
    let mut router = Router::new();
    for area in ["/admin", "/portal"] {
        router = router
            .route(&format!("{area}/sites/{{id}}/backups"), get(to_section).post(back_up_now))
            .route(&format!("{area}/sites/{{id}}/backups/{{backup_id}}/download"), get(download))
            .route(&format!("{area}/sites/{{id}}/backups/{{backup_id}}/restore"), get(confirm_restore).post(restore))
            .route(&format!("{area}/sites/{{id}}/restores/{{run_id}}"), get(restore_progress));
    }
    // Discarding a volume is for administrators; the portal lists nothing of it.
    router.route("/admin/sites/{id}/volumes/{name}/discard", get(confirm_discard).post(discard))
}

fn site_href(ctx: &PageCtx, id: Uuid) -> String {
    ctx.area.path(&format!("/sites/{id}"))
}

fn section_href(ctx: &PageCtx, id: Uuid) -> String {
    format!("{}#backups", site_href(ctx, id))
}

fn backup_href(ctx: &PageCtx, site_id: Uuid, backup_id: Uuid, action: &str) -> String {
    format!("{}/backups/{backup_id}/{action}", site_href(ctx, site_id))
}

fn restore_href(ctx: &PageCtx, site_id: Uuid, run_id: Uuid) -> String {
    format!("{}/restores/{run_id}", site_href(ctx, site_id))
}

/// Bytes for people: "1.7 MiB"; "—" when not known (yet).
pub fn size(bytes: Option<i64>) -> String {
    bytes.map(|b| Unit::Bytes.format(b as f64)).unwrap_or_else(|| "—".to_owned())
}

/// A backup kind as the page writes it.
pub fn kind_label(kind: BackupKind) -> &'static str {
    match kind {
        BackupKind::Manual => "manual",
        BackupKind::Hourly => "hourly",
        BackupKind::Daily => "daily (verified)",
        BackupKind::PreRestore => "before a restore",
    }
}

pub fn backup_status(status: BackupStatus) -> impl IntoView {
    let tone = match status {
        BackupStatus::Queued => Tone::Neutral,
        BackupStatus::Running => Tone::Busy,
        BackupStatus::Succeeded => Tone::Good,
        BackupStatus::Failed => Tone::Bad,
        // Dropped by retention: the row stays as a record, the snapshot is gone.
        BackupStatus::Pruned => Tone::Neutral,
    };
    badge(status.to_value(), tone)
}

/// Whether a backup can be downloaded and restored: written and read back intact.
fn is_good(b: &backups::Model) -> bool {
    b.status == BackupStatus::Succeeded && b.verified && b.snapshot_id.is_some()
}

/// Where a backup that has not finished stands, in words.
fn progress(b: &backups::Model) -> Option<String> {
    let now = Utc::now();
    match b.status {
        BackupStatus::Queued => Some(format!("waiting for a worker for {}", duration(&b.created_at, &now))),
        BackupStatus::Running => Some(format!(
            "reading the volume and verifying; {}",
            duration_opt(b.started_at.as_ref().or(Some(&b.created_at)), None, &now)
        )),
        _ => None,
    }
}

/// The "Backups" section of a site page, and whether something in it is still running (the
/// page then reloads itself).
pub struct Section {
    pub view: AnyView,
    pub busy: bool,
}

impl Section {
    /// The reload interval for the page that shows this section.
    pub fn refresh(&self) -> Option<u32> {
        self.busy.then_some(REFRESH_SECONDS)
    }
}

/// The restore runs of one site the caller may see, newest first.
async fn restores_of(state: &WebState, ctx: &PageCtx, site: &Site) -> Result<Vec<flow_runs::Model>, PageError> {
    let filter = store::flows::Filter {
        kind: Some(Restore::NAME.to_owned()),
        state: None,
        customer_id: Some(site.model.customer_id),
    };
    let runs = store::flows::list(&state.db, &ctx.caller, filter, Page { cursor: None, limit: Some(50) }).await?;
    Ok(runs
        .items
        .into_iter()
        .filter(|r| subject_of(r).is_some_and(|s| s.site_id == site.model.id))
        .take(RESTORES_LISTED)
        .collect())
}

fn subject_of(run: &flow_runs::Model) -> Option<Subject> {
    serde_json::from_value(run.input.clone()).ok()
}

pub async fn section(state: &WebState, ctx: &PageCtx, site: &Site) -> Result<Section, PageError> {
    let id = site.model.id;
    let listed = state
        .ops
        .list_backups(&ctx.caller, id, Page { cursor: None, limit: Some(LISTED) })
        .await
        .map_err(page_error)?;
    let restores = restores_of(state, ctx, site).await?;
    let busy = listed.items.iter().any(|b| matches!(b.status, BackupStatus::Queued | BackupStatus::Running))
        || restores.iter().any(|r| r.state == FlowState::Running);

    let back_up = if state.ops.backups.is_none() {
        view! { <p class="muted">"Backups are not set up in this process."</p> }.into_any()
    } else {
        view! {
            <form method="post" action=format!("{}/backups", site_href(ctx, id)) class="actions">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone() />
                <button type="submit" class="button">"Back up now"</button>
                <span class="muted">"The site keeps serving while its files are read; a backup counts only once it was read back and verified."</span>
            </form>
        }
        .into_any()
    };

    let rows: Vec<AnyView> = listed
        .items
        .iter()
        .map(|b| {
            let actions = is_good(b).then(|| {
                view! {
                    <a class="button button--small button--secondary" href=backup_href(ctx, id, b.id, "download")>"Download"</a>
                    " "
                    <a class="button button--small button--quiet" href=backup_href(ctx, id, b.id, "restore")>"Restore…"</a>
                }
            });
            let detail = match (progress(b), &b.error) {
                (Some(p), _) => Some(view! { <div class="muted">{p}</div> }.into_any()),
                (None, Some(e)) if b.status == BackupStatus::Failed => {
                    Some(view! { <pre class="error-text">{clip(e, 300)}</pre> }.into_any())
                }
                _ => None,
            };
            let row_class = if b.status == BackupStatus::Failed { "row--failed" } else { "" };
            view! {
                <tr class=row_class>
                    <td class="nowrap">{when(&b.created_at)}</td>
                    <td>{kind_label(b.kind)}</td>
                    <td class="nowrap">{size(b.size_bytes)}</td>
                    <td>{backup_status(b.status)}{detail}</td>
                    <td>{if b.verified { "yes" } else { "no" }}</td>
                    <td class="nowrap">{actions}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let list = if rows.is_empty() {
        view! { <p class="muted">"No backups yet."</p> }.into_any()
    } else {
        let columns = [
            Column::plain("Time"),
            Column::plain("Kind"),
            Column::plain("Size"),
            Column::plain("Status"),
            Column::plain("Verified"),
            Column::plain("Actions"),
        ];
        let more =
            listed.next_cursor.map(|_| view! { <p class="muted">{format!("The newest {LISTED} are shown.")}</p> });
        view! { {table("Backups", &columns, None, rows)}{more} }.into_any()
    };

    let restores = (!restores.is_empty()).then(|| {
        let items = restores
            .iter()
            .map(|r| {
                view! {
                    <li>
                        <a href=restore_href(ctx, id, r.id)>{format!("Restore started {}", when(&r.created_at))}</a>
                        " " {badge::flow_state(r.state)}
                    </li>
                }
            })
            .collect_view();
        view! { <h3 id="restores-title">"Restores"</h3><ul class="plain" aria-labelledby="restores-title">{items}</ul> }
    });

    let volumes = if ctx.caller.is_admin() { volumes_list(state, ctx, id).await? } else { None };

    let view = view! {
        <section class="panel stack" aria-labelledby="backups-title" id="backups">
            <h2 id="backups-title">"Backups"</h2>
            {back_up}
            {list}
            {restores}
            {volumes}
        </section>
    }
    .into_any();
    Ok(Section { view, busy })
}

fn reason_label(reason: &str) -> &'static str {
    match reason {
        store::site_volumes::REPLACED_BY_RESTORE => "the data from before a restore",
        store::site_volumes::FAILED_SWITCH => "restored data whose container did not become healthy",
        _ => "data the site no longer uses",
    }
}

/// The data volumes the site no longer uses, each with "Discard…" (administrators only).
async fn volumes_list(state: &WebState, ctx: &PageCtx, id: Uuid) -> Result<Option<AnyView>, PageError> {
    let volumes: Vec<site_volumes::Model> = state.ops.site_volumes(&ctx.caller, id).await.map_err(page_error)?;
    if volumes.is_empty() {
        return Ok(None);
    }
    let rows: Vec<AnyView> = volumes
        .iter()
        .map(|v| {
            let href = format!("/admin/sites/{id}/volumes/{}/discard", v.name);
            view! {
                <tr>
                    <td class="wrap-code"><code>{v.name.clone()}</code></td>
                    <td>{reason_label(&v.reason)}</td>
                    <td class="nowrap">{when(&v.retired_at)}</td>
                    <td class="nowrap">{when(&v.keep_until)}</td>
                    <td><a class="button button--small button--danger-quiet" href=href>"Discard…"</a></td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns = [
        Column::plain("Volume"),
        Column::plain("Holds"),
        Column::plain("Retired"),
        Column::plain("Kept until"),
        Column::plain("Actions"),
    ];
    Ok(Some(
        view! {
            <h3>"Volumes the site no longer uses"</h3>
            <p class="muted">"Kept so a restore can be undone by hand; removed when their time is up."</p>
            {table("Retired volumes", &columns, None, rows)}
        }
        .into_any(),
    ))
}

/// A GET on the form's address (a reload after posting, say) goes back to the section.
async fn to_section(ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    Ok(Redirect::to(&section_href(&ctx, id)).into_response())
}

async fn back_up_now(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    let flash = match state.ops.request_backup(&ctx.caller, id, BackupKind::Manual).await {
        Ok(_) => Flash::success("Backup queued. The list below follows it until it is verified."),
        Err(e) => Flash::error(format!("No backup queued: {}", operation_failed(e)?)),
    };
    ctx.redirect(&section_href(&ctx, id), flash).await
}

/// The backup's files as a tar, streamed from the repository as it is read (the same operation
/// as `GET /api/v1/sites/{id}/backups/{backup_id}/download`).
async fn download(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path((id, backup_id)): Path<(String, String)>,
) -> PageResult {
    let (id, backup_id) = (parse_id(&id)?, parse_id(&backup_id)?);
    let download = state.ops.download_backup(&ctx.caller, id, backup_id).await.map_err(page_error)?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", download.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(download.stream),
    )
        .into_response())
}

/// The site and a backup of it that can be restored; a backup that did not succeed is a
/// conflict page that says so.
async fn restorable(
    state: &WebState,
    ctx: &PageCtx,
    id: &str,
    backup_id: &str,
) -> Result<(Site, backups::Model), PageError> {
    let (id, backup_id) = (parse_id(id)?, parse_id(backup_id)?);
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let backup = state.ops.get_backup(&ctx.caller, id, backup_id).await.map_err(page_error)?;
    if !is_good(&backup) {
        return Err(PageError::Conflict(format!(
            "The backup of {} is {}, not verified: only a backup that was read back intact can be restored.",
            when(&backup.created_at),
            backup.status.to_value()
        )));
    }
    Ok((site, backup))
}

fn days(n: u64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

/// The confirmation page: names the site, its domains, the backup and what happens to the
/// current files. Only its button (a POST with the session's CSRF token) starts the restore.
async fn confirm_restore(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path((id, backup_id)): Path<(String, String)>,
) -> PageResult {
    let (site, backup) = restorable(&state, &ctx, &id, &backup_id).await?;
    let name = site.model.name.clone();
    let domains = if site.domains.is_empty() { "no domain".to_owned() } else { site.domains.join(", ") };
    let keep = days(state.config.runtime.retired_volume_keep_days);
    let files = backup.file_count.map(|n| format!(", {n} files")).unwrap_or_default();
    let action = backup_href(&ctx, site.model.id, backup.id, "restore");
    let body = view! {
        <section class="panel confirm stack" aria-labelledby="restore-question">
            <p class="confirm-question" id="restore-question">{format!("Restore the site {name} from its backup of {}?", when(&backup.created_at))}</p>
            <dl class="facts">
                <dt>"Site"</dt><dd>{name.clone()}</dd>
                <dt>"Domains"</dt><dd>{domains}</dd>
                <dt>"Backup"</dt><dd>{format!("{} ({})", when(&backup.created_at), kind_label(backup.kind))}</dd>
                <dt>"Size"</dt><dd>{format!("{}{files}", size(backup.size_bytes))}</dd>
            </dl>
            <p><strong>{format!("The current files of {name} will be replaced by the files of this backup.")}</strong></p>
            <p>{format!("A pre-restore backup is taken first, and the current volume is kept {keep}, so this can be undone. The backup is checked before anything is touched; if the restored site does not start, it goes back to its current files.")}</p>
            <form method="post" action=action class="actions">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone() />
                <button type="submit" class="button button--danger">"Restore this backup"</button>
                <a class="button button--quiet" href=section_href(&ctx, site.model.id)>"Cancel"</a>
            </form>
        </section>
    };
    Ok(page(ctx.chrome(), &format!("Restore {}", site.model.name), body).into_response())
}

async fn restore(
    State(state): State<WebState>,
    Path((id, backup_id)): Path<(String, String)>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let (id, backup_id) = (parse_id(&id)?, parse_id(&backup_id)?);
    match state.ops.start_restore(&ctx.caller, id, backup_id).await {
        Ok(run) => {
            let flash = Flash::success("Restore started. This page follows it step by step.");
            ctx.redirect(&restore_href(&ctx, id, run.id), flash).await
        }
        // Already restoring, a backup that did not succeed, no runtime: said on the site page.
        Err(e) => {
            let flash = Flash::error(format!("Not restored: {}", operation_failed(e)?));
            ctx.redirect(&section_href(&ctx, id), flash).await
        }
    }
}

/// What each step of a restore does, for people who do not know the flow's step names.
fn describe_step(name: &str) -> Option<&'static str> {
    Some(match name {
        "verify" => "Check the backup: every part is read back, decrypted and compared with what was recorded.",
        "pre_restore" => "Back up the current files first, so the restore can be undone.",
        "fill" => "Copy the backup's files into a fresh volume; the current one is not touched.",
        "switch" => "Start the site on the fresh volume and switch visitors over once it answers.",
        "keep_old" => "Keep the previous volume aside.",
        _ => return None,
    })
}

/// A restore run of this site, its steps as a timeline; reloads itself while it runs.
async fn restore_progress(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path((id, run_id)): Path<(String, String)>,
) -> PageResult {
    let (id, run_id) = (parse_id(&id)?, parse_id(&run_id)?);
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let (run, steps) = store::flows::get_with_steps(&state.db, &ctx.caller, run_id).await?;
    // Only a restore of this very site is shown here; any other run id is not found.
    let subject = subject_of(&run).filter(|s| run.kind == Restore::NAME && s.site_id == site.model.id);
    let Some(subject) = subject else { return Err(PageError::NotFound) };
    let backup = state.ops.get_backup(&ctx.caller, id, subject.backup_id).await.ok();
    let name = site.model.name.clone();
    let from = backup.as_ref().map(|b| format!("the backup of {}", when(&b.created_at)));
    let from_text = from.clone().unwrap_or_else(|| "a backup".to_owned());
    let outcome = match run.state {
        FlowState::Running => view! {
            <p role="status">{format!("Restoring {name} from {from_text}. The site keeps serving its current files until the restored ones answer. This page reloads itself.")}</p>
        }
        .into_any(),
        FlowState::Succeeded => view! {
            <p class="flash flash--success" role="status">{format!("Restored: {name} now serves the files of {from_text}.")}</p>
        }
        .into_any(),
        FlowState::Failed => view! {
            <p class="flash flash--error" role="alert">{format!("The restore did not finish. {name} kept its current files (or went back to them); nothing was lost.")}</p>
        }
        .into_any(),
    };
    let error = run.error.clone().map(|e| view! { <dt>"Error"</dt><dd><pre class="error-text">{e}</pre></dd> });
    let admin_link = ctx.caller.is_admin().then(|| {
        view! { <p><a href=crate::admin::flows::detail_href(run.id)>"Open the flow run (input, jobs, retry)"</a></p> }
    });
    let finished = run.finished_at;
    let took = duration_opt(Some(&run.created_at), finished.as_ref(), &Utc::now());
    let body = view! {
        <p><a href=section_href(&ctx, id)>{format!("← Site {name}")}</a></p>
        {outcome}
        <div class="cards cards--run">
            <section class="panel stack" aria-labelledby="r-summary">
                <h2 id="r-summary">"Restore"</h2>
                <dl class="facts">
                    <dt>"State"</dt><dd>{badge::flow_state(run.state)}</dd>
                    <dt>"Site"</dt><dd>{name.clone()}</dd>
                    <dt>"Backup"</dt><dd>{from.unwrap_or_else(|| "—".to_owned())}</dd>
                    <dt>"Started"</dt><dd>{when(&run.created_at)}</dd>
                    <dt>"Finished"</dt><dd>{when_opt(&finished)}</dd>
                    <dt>"Duration"</dt><dd>{took}</dd>
                    {error}
                </dl>
                {admin_link}
            </section>
            <section class="panel" aria-labelledby="r-steps">
                <h2 id="r-steps">"Steps"</h2>
                {crate::admin::flows::timeline(&steps, describe_step)}
            </section>
        </div>
    };
    let refresh = (run.state == FlowState::Running).then_some(REFRESH_SECONDS);
    Ok(page_refreshing(ctx.chrome(), &format!("Restore of {}", site.model.name), body, refresh).into_response())
}

async fn confirm_discard(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path((id, name)): Path<(String, String)>,
) -> PageResult {
    let id = parse_id(&id)?;
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let volumes = state.ops.site_volumes(&ctx.caller, id).await.map_err(page_error)?;
    let Some(volume) = volumes.into_iter().find(|v| v.name == name) else { return Err(PageError::NotFound) };
    let body = confirm_body(Confirm {
        question: format!("Discard the volume {} of the site {}?", volume.name, site.model.name),
        detail: Some(format!(
            "It holds {}. Its files are removed from the container engine for good; the site's current files are not touched. \
             Otherwise it is removed on {}.",
            reason_label(&volume.reason),
            when(&volume.keep_until)
        )),
        action: format!("/admin/sites/{id}/volumes/{}/discard", volume.name),
        button: "Discard volume",
        cancel_href: section_href(&ctx, id),
        csrf: ctx.csrf.clone(),
    });
    Ok(page(ctx.chrome(), "Discard a volume", body).into_response())
}

async fn discard(
    State(state): State<WebState>,
    Path((id, name)): Path<(String, String)>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    let flash = match state.ops.discard_volume(&ctx.caller, id, &name).await {
        Ok(()) => Flash::success(format!("Volume {name} discarded.")),
        Err(e) => Flash::error(format!("Not discarded: {}", operation_failed(e)?)),
    };
    ctx.redirect(&section_href(&ctx, id), flash).await
}
