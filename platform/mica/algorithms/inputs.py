"""The /input a container sees and the predictions it leaves, per the contract of
evaluator.containers (write_cases, predictions_path): /input/<case_id>/<image files> and
/input/cases.json; /output/predictions.csv, or /output/masks/<case_id>.png|.nii.gz."""

import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError

from evaluator import containers
from mica.uploads.files import fetch

MASK_SUFFIXES = (".png", ".nii.gz")


def prepare_input(phase, input_dir):
    """Writes the test set's images (hard links where the storage is this disk, else copies) and
    cases.json. A test case with no stored images is listed with no files."""
    from mica.datasets.models import Case as ImageCase

    case_ids = phase.test_set.case_ids()
    images = {}
    for case in ImageCase.objects.filter(dataset__challenge=phase.challenge, case_id__in=case_ids):
        images.setdefault(case.case_id, case)
    cases = {}
    for case_id in case_ids:
        files = []
        if case_id in images:
            folder = Path(input_dir) / case_id
            folder.mkdir(parents=True, exist_ok=True)
            for instance in images[case_id].instances:
                name = f"{instance.uid}{''.join(Path(instance.file.name).suffixes)}"
                fetch(instance.file, folder / name)
                files.append(f"{case_id}/{name}")
        cases[case_id] = files
    containers.write_cases(input_dir, cases)


def collect_predictions(challenge, output_dir, work_dir):
    """The container's outputs as one predictions file in the site's format (segmentation masks
    packed into a .zip); ValidationError names what is missing."""
    expected = containers.predictions_path(output_dir, challenge.task_type)
    shown = f"/output/{expected.relative_to(output_dir)}"
    if not challenge.takes_masks:
        if expected.is_symlink() or not expected.is_file():
            raise ValidationError(f"The container wrote no {shown}.")
        return expected
    masks = sorted(path for path in expected.iterdir()
                   if path.is_file() and not path.is_symlink() and path.name.endswith(MASK_SUFFIXES)
                   ) if expected.is_dir() and not expected.is_symlink() else []
    if not masks:
        raise ValidationError(f"The container wrote no masks (<case_id>.png or <case_id>.nii.gz) to {shown}/.")
    archive = Path(work_dir) / "predictions.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        for mask in masks:
            packed.write(mask, mask.name)
    return archive
