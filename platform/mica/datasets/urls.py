from django.urls import include, path

from . import case_views, dicomweb, views

app_name = "datasets"

urlpatterns = [
    path("challenges/<slug:slug>/new/", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/upload/", views.upload, name="upload_create"),
    path("uploads/<uuid:uuid>/", views.upload_detail, name="upload"),
    path("<int:pk>/instances/<str:uid>/preview.png", views.preview, name="preview"),
    path("<int:pk>/instances/<str:uid>/file", views.download, name="download"),
    path("<int:pk>/instances/<str:uid>/dicom", views.download_as_dicom, name="download_as_dicom"),
    path("<int:pk>/cases.csv", case_views.case_list, name="case_list"),
    path("<int:pk>/original-identifiers.csv", case_views.identifier_map, name="identifier_map"),
    path("<int:pk>/import-labels/", case_views.import_labels, name="import_labels"),
    path("<int:pk>/pull/", case_views.pull, name="pull"),
    path("<int:pk>/dicomweb/", include(dicomweb.urlpatterns)),
]
