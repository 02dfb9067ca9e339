//! The webhook body: one JSON object per group event (a new group, or a group that reached
//! `--forward-threshold` reports), with a `text` line that chat systems (Slack, Mattermost,
//! Rocket.Chat) show as it is, and a link to the group's page in the console.

use serde_json::{Value, json};

use crate::store::{GroupSummary, OutboxItem, OutboxKind};

/// The body announcing `item`, with the group as it is now (`None`: purged since).
pub(super) fn body(
    item: &OutboxItem,
    group: Option<&GroupSummary>,
    threshold: Option<u64>,
    link: Option<&str>,
) -> Value {
    let title = group
        .and_then(|g| g.title.clone())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "(no error text)".into());
    let count = group.map_or(item.count, |g| g.count);
    let what = match item.kind {
        OutboxKind::Threshold => format!("error group reached {} reports", threshold.unwrap_or(item.count)),
        _ => "new error group".to_string(),
    };
    let mut text = format!("v8help: {what}: {title} ({count})");
    if let Some(link) = link {
        text.push_str(&format!(" {link}"));
    }
    json!({
        "event": item.kind.as_str(),
        "text": text,
        "group": {
            "key": item.group_key,
            "title": title,
            "count": count,
            "users": group.map(|g| g.users),
            "machines": group.map(|g| g.machines),
            "first_seen": group.map(|g| g.first_seen),
            "last_seen": group.map(|g| g.last_seen),
            "mark": group.and_then(|g| g.mark.as_ref()).map(|m| json!({"state": m.state, "note": m.note})),
        },
        "count_at_event": item.count,
        "threshold": threshold,
        "report_id": item.report_id,
        "console_url": link,
        "at": item.created_at,
    })
}
