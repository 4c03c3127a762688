//! Sends the queued notifications in order, then clears the queue (SPEC B§4.11).

use super::super::{
    context::RunContext,
    error::StepError,
    notify::{Delivery, Notification},
    step::StepReport,
};

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let queued = std::mem::take(&mut ctx.status.state.notifications);
    let mut sent = 0;
    for q in &queued {
        match Notification::from_queued(q) {
            Some(n) => {
                if matches!(ctx.notifier.send(&n).await, Delivery::Delivered { .. }) {
                    sent += 1;
                }
            }
            None => tracing::warn!(event = %q.event, "unreadable queued notification dropped"),
        }
    }
    ctx.status.save().await?;
    Ok(StepReport::new(format!(
        "{sent} of {} queued notification(s) delivered",
        queued.len()
    )))
}
