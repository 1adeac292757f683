from django.contrib import admin

from .models import DataRelease, DownloadRecord


@admin.register(DataRelease)
class DataReleaseAdmin(admin.ModelAdmin):
    list_display = ["name", "challenge", "kind", "status", "n_cases", "size"]
    list_filter = ["kind", "status"]
    exclude = ["manifest"]


@admin.register(DownloadRecord)
class DownloadRecordAdmin(admin.ModelAdmin):
    list_display = ["release", "user", "started_at", "range_start", "range_end", "bytes_sent", "completed"]
