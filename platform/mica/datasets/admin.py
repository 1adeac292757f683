from django.contrib import admin

from .models import Dataset, Instance, QuarantinedFile, Study, Upload


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "challenge", "visible_to_participants", "created_at"]


class QuarantinedInline(admin.TabularInline):
    model = QuarantinedFile
    extra = 0
    readonly_fields = ["source", "reason"]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["original_filename", "dataset", "status", "files_done", "files_total", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["status", "status_reason", "status_changed_at", "attempts", "files_done", "files_total",
                       "action_counts"]
    inlines = [QuarantinedInline]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["study_uid", "patient_pseudonym", "dataset"]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ["uid", "kind", "dataset"]
