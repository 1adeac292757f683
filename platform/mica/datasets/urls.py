from django.urls import path

from . import views

app_name = "datasets"

urlpatterns = [
    path("challenges/<slug:slug>/new/", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/upload/", views.upload, name="upload_create"),
    path("uploads/<uuid:uuid>/", views.upload_detail, name="upload"),
    path("<int:pk>/instances/<str:uid>/preview.png", views.preview, name="preview"),
    path("<int:pk>/instances/<str:uid>/file", views.download, name="download"),
    path("<int:pk>/instances/<str:uid>/dicom", views.download_as_dicom, name="download_as_dicom"),
]
