from django.urls import path

from . import views

app_name = "leaderboards"

urlpatterns = [
    path("phases/<int:phase_pk>/", views.phase_leaderboard, name="phase"),
    path("phases/<int:phase_pk>/private/", views.private_leaderboard, name="private"),
]
