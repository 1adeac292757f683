from django.contrib import admin

from .models import Post, Report, Thread


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ["title", "challenge", "author", "pinned", "is_announcement", "locked_at", "last_post_at"]
    list_filter = ["challenge", "is_announcement"]
    search_fields = ["title"]
    raw_id_fields = ["author", "writeup_team"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["thread", "author", "created_at", "hidden_at", "deleted_at"]
    raw_id_fields = ["thread", "author", "moderated_by"]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["post", "reporter", "created_at", "resolved_at"]
    raw_id_fields = ["post", "reporter", "resolved_by"]
