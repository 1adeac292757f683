from django.urls import path

from . import views

app_name = "downloads"

urlpatterns = [
    path("challenges/<slug:slug>/", views.challenge_data, name="challenge"),
    path("challenges/<slug:slug>/log/", views.download_log, name="log"),
    path("challenges/<slug:slug>/<int:pk>/delete/", views.delete_release, name="delete"),
]
