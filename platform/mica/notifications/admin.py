from django.contrib import admin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The outbox, for the staff: what waits, what the mail server refused and why."""

    list_display = ["subject", "user", "kind", "status", "send_failures", "created_at", "sent_at"]
    list_filter = ["status", "kind"]
    readonly_fields = [field.name for field in Notification._meta.fields]
