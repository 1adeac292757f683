from django.contrib import admin

from .models import Challenge, ChallengeRole, OrganizerRequest, Phase, Team, TeamMembership, TestSet


class PhaseInline(admin.TabularInline):
    model = Phase
    extra = 0


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "task_type", "state", "created_at"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [PhaseInline]


@admin.register(ChallengeRole)
class ChallengeRoleAdmin(admin.ModelAdmin):
    list_display = ["challenge", "user", "role", "accepted_terms_at", "approved_at"]
    list_filter = ["role"]


class MembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 0
    fields = ["user", "challenge", "joined_at"]
    readonly_fields = ["joined_at"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "challenge", "created_at"]
    inlines = [MembershipInline]


@admin.register(TestSet)
class TestSetAdmin(admin.ModelAdmin):
    list_display = ["name", "challenge", "created_at"]


@admin.register(OrganizerRequest)
class OrganizerRequestAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "decided_at", "approved"]
    readonly_fields = ["decided_at", "decided_by", "approved"]
