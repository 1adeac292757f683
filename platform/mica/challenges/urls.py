from django.urls import path

from . import views

app_name = "challenges"

urlpatterns = [
    path("new/", views.create, name="create"),
    path("requests/new/", views.request_organizer, name="request_organizer"),
    path("requests/", views.organizer_requests, name="organizer_requests"),
    path("phases/<int:pk>/case-ids.csv", views.case_ids, name="case_ids"),
    path("phases/<int:pk>/edit/", views.edit_phase, name="edit_phase"),
    path("phases/<int:pk>/delete/", views.delete_phase, name="delete_phase"),
    path("phases/<int:pk>/reveal/", views.reveal_private, name="reveal_private"),
    path("<slug:slug>/", views.detail, name="detail"),
    path("<slug:slug>/edit/", views.edit, name="edit"),
    path("<slug:slug>/delete/", views.delete, name="delete"),
    path("<slug:slug>/publish/", views.publish, name="publish"),
    path("<slug:slug>/organizers/", views.organizers, name="organizers"),
    path("<slug:slug>/organizers/<int:user_pk>/remove/", views.remove_organizer, name="remove_organizer"),
    path("<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
    path("<slug:slug>/participants/<int:user_pk>/approve/", views.approve_participant, name="approve_participant"),
    path("<slug:slug>/register/", views.register, name="register"),
    path("<slug:slug>/teams/new/", views.create_team, name="create_team"),
    path("<slug:slug>/teams/join/", views.join_team, name="join_team"),
    path("<slug:slug>/teams/<int:pk>/", views.team, name="team"),
    path("<slug:slug>/test-sets/new/", views.create_test_set, name="create_test_set"),
    path("<slug:slug>/test-sets/<int:pk>/", views.test_set, name="test_set"),
    path("<slug:slug>/test-sets/<int:pk>/versions/", views.new_truth_version, name="new_truth_version"),
    path("<slug:slug>/test-sets/<int:pk>/delete/", views.delete_test_set, name="delete_test_set"),
    path("<slug:slug>/phases/new/", views.create_phase, name="create_phase"),
]
