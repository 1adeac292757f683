from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# Swagger UI's script is a file of its own (the split view), so scripts stay 'self'; its page
# and components set inline styles and draw icons as data: images.
api_docs = csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="schema")
)

urlpatterns = [
    path("", include("mica.core.urls")),
    path("accounts/", include("mica.accounts.urls")),
    path("challenges/", include("mica.challenges.urls")),
    path("datasets/", include("mica.datasets.urls")),
    path("submissions/", include("mica.submissions.urls")),
    path("leaderboards/", include("mica.leaderboards.urls")),
    path("annotations/", include("mica.annotations.urls")),
    path("forum/", include("mica.forum.urls")),
    path("notifications/", include("mica.notifications.urls")),
    path("downloads/", include("mica.downloads.urls")),
    path("bundles/", include("mica.bundles.urls")),
    path("uploads/", include("mica.uploads.urls")),
    path("algorithms/", include("mica.algorithms.urls")),
    path("sites/", include("mica.sites.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="api-docs"),
]

handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
