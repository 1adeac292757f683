from django.contrib import admin

from .models import Submission, SubmissionEvent


class EventInline(admin.TabularInline):
    model = SubmissionEvent
    extra = 0
    readonly_fields = ["from_status", "to_status", "reason", "created_at"]
    can_delete = False


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["pk", "team", "phase", "status", "primary_score", "hidden_from_leaderboard", "created_at"]
    list_filter = ["status", "hidden_from_leaderboard"]
    # Status changes only through Submission.move, never by editing the field here.
    readonly_fields = ["status", "status_reason", "status_changed_at", "scoring_attempts", "result", "primary_score"]
    inlines = [EventInline]
