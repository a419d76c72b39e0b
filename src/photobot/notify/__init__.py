"""Notifications through Apprise: guests hear about their photo (email, WhatsApp, push), organisers about credits.

The rest of the system calls four things:
- `plan_notifications(session, job, event, settings, kind)` inside the transaction that finishes a job;
- `check_credit_alerts(session, event)` inside the transaction that settles a credit;
- `Notifier(database, settings, storage).run_forever(stop, wake)` in the worker (or `run_due` per tick);
- `resend_notification(database, job_id, channel)` for operators.
See docs/notifications.md for channel configuration.
"""

from photobot.notify.alerts import THRESHOLDS, check_credit_alerts, reset_credit_alerts
from photobot.notify.masking import mask_email, mask_phone
from photobot.notify.notifier import Notifier
from photobot.notify.planning import plan_notifications
from photobot.notify.service import NotificationNotFound, resend_notification

__all__ = [
    "THRESHOLDS",
    "NotificationNotFound",
    "Notifier",
    "check_credit_alerts",
    "mask_email",
    "mask_phone",
    "plan_notifications",
    "resend_notification",
    "reset_credit_alerts",
]
