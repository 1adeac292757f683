from django.urls import path

from . import views

app_name = "bundles"

urlpatterns = [
    path("import/", views.import_page, name="import"),
    path("challenges/<slug:slug>/", views.export_page, name="export_page"),
    path("challenges/<slug:slug>/bundle.zip", views.export, name="export"),
]
