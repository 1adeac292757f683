from django.urls import path

from . import views

app_name = "algorithms"

urlpatterns = [
    path("runs/<uuid:uuid>/", views.run_detail, name="run"),
    path("challenges/<slug:slug>/runs/", views.challenge_runs, name="challenge_runs"),
    path("<int:pk>/rerun/", views.rerun, name="rerun"),
    path("<int:pk>/transferability/", views.transferability, name="transferability"),
    path("phases/<int:phase_pk>/metric-container/", views.metric_container, name="metric_container"),
]
