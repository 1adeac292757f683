from django.urls import path

from mica.challenges.models import Split

from . import views

app_name = "leaderboards"

PRIVATE = {"split": Split.PRIVATE}

urlpatterns = [
    path("phases/<int:phase_pk>/", views.phase_leaderboard, name="phase"),
    path("phases/<int:phase_pk>/private/", views.private_leaderboard, name="private"),
    path("phases/<int:phase_pk>/significance/", views.significance, name="significance"),
    path("phases/<int:phase_pk>/private/significance/", views.significance, PRIVATE, name="private_significance"),
    path("phases/<int:phase_pk>/plots/<slug:name>.svg", views.plot_svg, name="plot"),
    path("phases/<int:phase_pk>/private/plots/<slug:name>.svg", views.plot_svg, PRIVATE, name="private_plot"),
    path("phases/<int:phase_pk>/leaderboard.csv", views.export_csv, name="export_csv"),
    path("phases/<int:phase_pk>/private/leaderboard.csv", views.export_csv, PRIVATE, name="private_export_csv"),
    path("phases/<int:phase_pk>/leaderboard.json", views.export_json, name="export_json"),
    path("phases/<int:phase_pk>/private/leaderboard.json", views.export_json, PRIVATE, name="private_export_json"),
    path("phases/<int:phase_pk>/per-case.csv", views.per_case_csv, name="per_case"),
    path("phases/<int:phase_pk>/private/per-case.csv", views.per_case_csv, PRIVATE, name="private_per_case"),
    path("phases/<int:phase_pk>/backfill/", views.request_backfill, name="request_backfill"),
    path("phases/<int:phase_pk>/report/", views.report, name="report"),
    path("phases/<int:phase_pk>/report/build/", views.request_report, name="request_report"),
    path("phases/<int:phase_pk>/report/report.pdf", views.report_pdf, name="report_pdf"),
    path("phases/<int:phase_pk>/report/plots/<slug:name>.svg", views.report_plot, name="report_plot"),
]
