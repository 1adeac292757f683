from django.urls import path

from . import views

app_name = "challenges"

urlpatterns = [
    path("new/", views.create, name="create"),
    path("<slug:slug>/", views.detail, name="detail"),
    path("<slug:slug>/register/", views.register, name="register"),
    path("<slug:slug>/teams/new/", views.create_team, name="create_team"),
    path("<slug:slug>/teams/join/", views.join_team, name="join_team"),
    path("<slug:slug>/test-sets/new/", views.create_test_set, name="create_test_set"),
    path("<slug:slug>/phases/new/", views.create_phase, name="create_phase"),
    path("phases/<int:pk>/case-ids.csv", views.case_ids, name="case_ids"),
]
