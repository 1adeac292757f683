from django.urls import path

from . import views

app_name = "submissions"

urlpatterns = [
    path("phases/<int:phase_pk>/submit/", views.create, name="create"),
    path("phases/<int:phase_pk>/baseline/", views.create_baseline, name="create_baseline"),
    path("<uuid:uuid>/", views.detail, name="detail"),
    path("<uuid:uuid>/file/", views.download, name="download"),
    path("<uuid:uuid>/select/", views.select, name="select"),
    path("<uuid:uuid>/cancel/", views.cancel, name="cancel"),
]
