//! The "Usage" panel of a site page: real samples from a real container drawn as SVG charts,
//! with the range links working without JavaScript, in the console and in the owner's portal;
//! another customer's site page stays not found.

use std::time::Duration;

use reqwest::StatusCode;

use super::{Browser, Js};
use crate::support::TestApp;

#[tokio::test]
async fn site_pages_chart_real_usage_for_admins_and_owners() {
    let app =
        TestApp::spawn_runtime_with(&[("BERTH_METRICS_INTERVAL_SECONDS", "1"), ("BERTH_UPTIME_INTERVAL_SECONDS", "1")])
            .await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "charts@example.com", "business").await;
    let theirs = app.customer(&admin, "elsewhere@example.com", "business").await;
    let site = app.running_site(&admin, &mine, "charted", "charted.usage.test").await;
    let other = app.running_site(&admin, &theirs, "hidden", "hidden.usage.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    // Wait until the memory series has a few points, so the charts have lines to draw.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let res = admin.get(&format!("/api/v1/sites/{id}/metrics?series=memory_bytes,response_ms")).await;
        let n = |s: &str| res.body["series"][s].as_array().map_or(0, Vec::len);
        if n("memory_bytes") >= 3 && n("response_ms") >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no samples: {}", res.text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut b = Browser::start(&app, "usage", Js::Off).await;
    b.sign_in_as_admin().await;
    b.open(&format!("/admin/sites/{id}?range=1h")).await;
    b.wait_for_text("Usage").await;
    let panel = b.text_of("#usage").await;
    assert!(panel.contains("Memory:") && !panel.contains("Memory: no data"), "{panel}");
    assert!(panel.contains("% of uptime checks passed"), "{panel}");
    assert!(b.exists("#usage svg polyline").await, "a drawn line");
    assert!(b.exists("#usage svg line.chart__limit").await, "the memory limit is drawn");
    b.client.execute("document.getElementById('usage').scrollIntoView()", vec![]).await.expect("scroll");
    b.snap("site-usage").await;
    // The range links are plain links.
    b.follow_link("7 days").await;
    b.wait_for_text("Usage").await;
    let url = b.client.current_url().await.expect("url");
    assert_eq!(url.query(), Some("range=7d"), "{url}");
    let panel = b.text_of("#usage").await;
    assert!(panel.contains("Memory:"), "{panel}");
    b.close().await;

    // The owner sees the same panel in the portal; another customer's site is not found.
    let owner = app.customer_user(&admin, &mine, "owner@charts.example").await;
    let page = owner.get(&format!("/portal/sites/{id}?range=1h")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("id=\"usage\"") && page.text.contains("<polyline"), "{}", page.text);
    let hidden = owner.get(&format!("/portal/sites/{}", other["id"].as_str().expect("id"))).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    app.finish().await;
}
