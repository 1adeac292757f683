from django.urls import path

from . import api, views

app_name = "sites"

urlpatterns = [
    path("phases/<int:phase_pk>/", views.phase_sites, name="phase_sites"),
    path("phases/<int:phase_pk>/transferability/", views.phase_transferability, name="transferability"),
    path("<int:pk>/", views.site_detail, name="site"),
    path("<int:pk>/audit/", views.audit, name="audit"),
    path("<int:pk>/tokens/", views.new_token, name="new_token"),
    path("<int:pk>/queue/", views.queue, name="queue"),
    path("<int:pk>/compare/", views.compare, name="compare"),
    path("tokens/<int:pk>/revoke/", views.revoke_token, name="revoke_token"),
    path("api/claim", api.claim, name="api_claim"),
    path("api/jobs/<uuid:uuid>/heartbeat", api.heartbeat, name="api_heartbeat"),
    path("api/jobs/<uuid:uuid>/image", api.image, name="api_image"),
    path("api/jobs/<uuid:uuid>/result", api.result, name="api_result"),
]
