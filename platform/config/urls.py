from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("mica.core.urls")),
    path("accounts/", include("mica.accounts.urls")),
    path("challenges/", include("mica.challenges.urls")),
    path("datasets/", include("mica.datasets.urls")),
    path("submissions/", include("mica.submissions.urls")),
    path("leaderboards/", include("mica.leaderboards.urls")),
    path("annotations/", include("mica.annotations.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
