from django.contrib import admin

from .models import Evaluation, EvaluationEvent, Rescore


class EventInline(admin.TabularInline):
    model = EvaluationEvent
    extra = 0
    readonly_fields = ["from_status", "to_status", "reason", "created_at"]
    can_delete = False


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["pk", "submission", "split", "truth_version", "status", "primary_score", "attempts", "created_at"]
    list_filter = ["status", "split"]
    # Status changes only through the model's moves, never by editing the field here.
    readonly_fields = ["status", "status_reason", "status_changed_at", "attempts", "claimed_by", "lease_expires_at",
                       "result", "metrics", "primary_score"]
    inlines = [EventInline]


@admin.register(Rescore)
class RescoreAdmin(admin.ModelAdmin):
    list_display = ["truth_version", "status", "total", "created_at"]
    readonly_fields = ["status", "status_reason", "total"]
