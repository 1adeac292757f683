"""Running a team's algorithm container on hidden test cases, sandboxed (framework-free).

>>> from evaluator import containers
>>> image = containers.load_image("algorithm.tar", "/srv/images/abc")            # doctest: +SKIP
>>> containers.write_cases("in/", {"case1": ["images/case1.png"]})               # doctest: +SKIP
>>> result = containers.run(image, "in/", "out/", limits=containers.Limits(wall_seconds=600))  # doctest: +SKIP
>>> result.status, result.reason                                                 # doctest: +SKIP

The contract for participants (see evaluator/README.md, "Containers"): the container reads
``/input`` (read-only: the cases' files and ``cases.json``) and writes its predictions to
``/output`` (``predictions.csv``, or ``masks/<case_id>.png|.nii.gz`` for segmentation); ``/tmp``
is writable; nothing else is mounted and there is no network.
"""

from .backends import BACKENDS, BwrapBackend, EngineBackend, run
from .cases import CASES_FILE, predictions_path, write_cases
from .image import Image, ImageConfig, ImageRefused, image_digest, load_image, open_image
from .limits import Limits, RunResult, cgroup_support

__all__ = ["load_image", "open_image", "image_digest", "run", "Image", "ImageConfig", "ImageRefused", "Limits", "RunResult",
           "BACKENDS", "BwrapBackend", "EngineBackend", "cgroup_support", "write_cases", "predictions_path",
           "CASES_FILE"]
