from django.contrib import admin

from .models import Submission, SubmissionEvent


class EventInline(admin.TabularInline):
    model = SubmissionEvent
    extra = 0
    readonly_fields = ["from_status", "to_status", "reason", "created_at"]
    can_delete = False


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["pk", "team", "phase", "status", "is_baseline", "selected", "created_at"]
    list_filter = ["status", "is_baseline"]
    # Status changes only through the model's moves, never by editing the field here.
    readonly_fields = ["status", "status_reason", "status_changed_at", "attempts", "claimed_by", "lease_expires_at",
                       "problems"]
    inlines = [EventInline]
