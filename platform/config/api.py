from django.urls import path
from rest_framework.routers import DefaultRouter

from mica.annotations.api import AnnotationProjectViewSet, AssignmentViewSet
from mica.accounts.api import AuthTokenView
from mica.algorithms.api import AlgorithmViewSet, InferenceRunViewSet
from mica.challenges.api import ChallengeViewSet, PhaseViewSet, TeamViewSet, TestSetViewSet
from mica.bundles.api import BundleExportView, BundleImportView
from mica.downloads.api import DataReleaseViewSet
from mica.datasets.api import DatasetViewSet, UploadViewSet
from mica.evaluations.api import EvaluationViewSet
from mica.forum.api import urlpatterns as forum_urls
from mica.leaderboards.api import (
    BoardStatisticsView, LeaderboardView, PrivateBoardStatisticsView, PrivateLeaderboardView,
)
from mica.notifications.api import urlpatterns as notification_urls
from mica.sites.organizer_api import PhaseSitesView, SiteTokenViewSet, SiteViewSet
from mica.submissions.api import SubmissionViewSet

router = DefaultRouter()
router.register("challenges", ChallengeViewSet)
router.register("phases", PhaseViewSet)
router.register("teams", TeamViewSet, basename="team")
router.register("test-sets", TestSetViewSet, basename="test-set")
router.register("evaluations", EvaluationViewSet, basename="evaluation")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("uploads", UploadViewSet, basename="upload")
router.register("releases", DataReleaseViewSet, basename="data-release")
router.register("submissions", SubmissionViewSet, basename="submission")
router.register("annotation-projects", AnnotationProjectViewSet, basename="annotation-project")
router.register("annotation-assignments", AssignmentViewSet, basename="annotation-assignment")
router.register("algorithms", AlgorithmViewSet, basename="algorithm")
router.register("inference-runs", InferenceRunViewSet, basename="inference-run")
router.register("sites", SiteViewSet, basename="site")
router.register("site-tokens", SiteTokenViewSet, basename="site-token")

urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="api-token"),
    path("leaderboards/<int:phase_pk>/", LeaderboardView.as_view(), name="api-leaderboard"),
    path("leaderboards/<int:phase_pk>/private/", PrivateLeaderboardView.as_view(), name="api-private-leaderboard"),
    path("leaderboards/<int:phase_pk>/statistics/", BoardStatisticsView.as_view(), name="api-board-statistics"),
    path("leaderboards/<int:phase_pk>/private/statistics/", PrivateBoardStatisticsView.as_view(),
         name="api-private-board-statistics"),
    path("phases/<int:phase_pk>/sites/", PhaseSitesView.as_view(), name="api-phase-sites"),
    path("bundles/", BundleImportView.as_view(), name="api-bundle-import"),
    path("bundles/<slug:slug>/", BundleExportView.as_view(), name="api-bundle-export"),
    *forum_urls,
    *notification_urls,
    *router.urls,
]
