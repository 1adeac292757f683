from django.urls import path

from . import tus

app_name = "uploads"

urlpatterns = [
    path("", tus.CreateUpload.as_view(), name="create"),
    path("<uuid:uuid>/", tus.UploadResource.as_view(), name="upload"),
]
