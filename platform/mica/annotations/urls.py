from django.urls import path

from . import views

app_name = "annotations"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("datasets/<int:dataset_pk>/new/", views.create, name="create"),
    path("<int:pk>/", views.project, name="project"),
    path("<int:pk>/next/", views.next_case, name="next"),
    path("read/<int:pk>/", views.read, name="read"),
    path("<int:pk>/adjudication/", views.adjudication, name="adjudication"),
    path("<int:pk>/adjudication/<str:case_id>/", views.adjudicate_case, name="adjudicate_case"),
    path("<int:pk>/agreement/", views.agreement, name="agreement"),
    path("<int:pk>/truth/", views.truth, name="truth"),
]
