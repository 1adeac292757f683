"""What a container sees and what it must leave: the /input folder and the /output contract.

/input/cases.json   {"task", "predictions": what to write, "cases": [{"case_id", "files": [...]}]}
/input/<case_id>/   the case's anonymized images, as the dataset stores them
/output/predictions.csv                     classification, regression, detection (the CSV format)
/output/<case_id>.png or .nii.gz            segmentation masks (Mica packs them into the .zip format)
"""

import json
import os
import shutil
import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError

PREDICTIONS_CSV = "predictions.csv"
MASK_SUFFIXES = (".png", ".nii.gz")


def prepare_input(phase, input_dir):
    """Writes the test set's images (linked where the file system allows, else copied) and
    cases.json; returns the number of cases."""
    from mica.datasets.models import Case as ImageCase

    challenge = phase.challenge
    case_ids = phase.test_set.case_ids()
    images = {}
    for case in ImageCase.objects.filter(dataset__challenge=challenge, case_id__in=case_ids):
        images.setdefault(case.case_id, case)
    listed = []
    for case_id in case_ids:
        files = []
        case = images.get(case_id)
        if case is not None:
            folder = Path(input_dir) / case_id
            folder.mkdir(parents=True, exist_ok=True)
            for instance in case.instances:
                source = Path(instance.file.path)
                name = f"{instance.uid}{''.join(source.suffixes)}"
                _link_or_copy(source, folder / name)
                files.append(f"{case_id}/{name}")
        listed.append({"case_id": case_id, "files": files})
    task = challenge.task_type
    expected = "<case_id>.png or <case_id>.nii.gz masks" if challenge.takes_masks else PREDICTIONS_CSV
    header = phase.test_set.latest_version.info.get("predictions_header")
    description = {"task": task, "predictions": expected, "predictions_header": header, "cases": listed}
    # One case per line, so that even a shell script can read it.
    lines = ",\n".join(json.dumps(case) for case in listed)
    head = json.dumps({key: value for key, value in description.items() if key != "cases"})[:-1]
    Path(input_dir, "cases.json").write_text(f'{head}, "cases": [\n{lines}\n]}}\n')
    return len(listed)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def collect_predictions(challenge, output_dir, work_dir):
    """The container's outputs as one predictions file in the task's format; ValidationError
    names what is missing or wrong."""
    output_dir = Path(output_dir)
    if not challenge.takes_masks:
        path = output_dir / PREDICTIONS_CSV
        if path.is_symlink() or not path.is_file():
            raise ValidationError(f"The container wrote no /output/{PREDICTIONS_CSV}.")
        return path
    masks = sorted(path for path in output_dir.iterdir()
                   if path.is_file() and not path.is_symlink() and path.name.endswith(MASK_SUFFIXES))
    if not masks:
        raise ValidationError("The container wrote no masks (<case_id>.png or <case_id>.nii.gz) to /output.")
    archive = Path(work_dir) / "predictions.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        for mask in masks:
            packed.write(mask, mask.name)
    return archive
