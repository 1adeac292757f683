from django.urls import path

from . import views

app_name = "submissions"

urlpatterns = [
    path("phases/<int:phase_pk>/submit/", views.create, name="create"),
    path("<uuid:uuid>/", views.detail, name="detail"),
    path("<uuid:uuid>/file/", views.download, name="download"),
]
