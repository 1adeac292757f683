"""The manifest of a release, prepared on the ``cpu`` queue (it reads every file once)."""

import logging

from mica.core.tasks import mica_task

from .models import DataRelease

logger = logging.getLogger(__name__)


@mica_task(queue="cpu")
def prepare_release(release_pk):
    release = DataRelease.objects.select_related("dataset", "test_set", "challenge").filter(pk=release_pk).first()
    if release is None or not release.claim("Reading the files."):
        return
    try:
        with release.lease_held():
            manifest, n_cases = release.build_manifest()
            release.manifest = manifest  # for the size below; saved with the status
            size = release.archive.size
    except (ValueError, OSError) as error:
        logger.warning("release %s could not be prepared: %s", release.pk, error)
        release.finish(DataRelease.Status.FAILED, str(error))
        return
    release.finish(DataRelease.Status.READY, f"{n_cases} case{'s' if n_cases != 1 else ''}.",
                   manifest=manifest, size=size, n_cases=n_cases)
