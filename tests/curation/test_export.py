"""The exported truths are read back by the evaluator itself (a real peer), and a failed export
leaves nothing behind."""

import numpy as np
import pytest

import curation
import evaluator


def test_classification_truth_is_read_by_the_evaluator(tmp_path):
    votes = curation.majority_vote({"2.25.1": {"A": "pneumonia", "B": "pneumonia"},
                                    "2.25.2": {"A": "normal", "B": "normal", "C": "pneumonia"},
                                    "2.25.3": {"A": "pneumonia", "B": "normal", "C": "pneumonia"}})
    path = curation.write_classification_truth(tmp_path / "truth.csv", {c: v.label for c, v in votes.items()},
                                               positive="pneumonia", column="pneumonia")
    assert path.read_text() == "case_id,pneumonia\n2.25.1,1\n2.25.2,0\n2.25.3,1\n"
    assert evaluator.truth_case_ids("classification", path) == ["2.25.1", "2.25.2", "2.25.3"]
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("case_id,score\n2.25.1,0.9\n2.25.2,0.2\n2.25.3,0.7\n")
    assert evaluator.score("classification", path, predictions)["metrics"]["auc"] == 1.0


def test_an_unsettled_case_stops_the_export_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="case '2.25.2': no consensus label; adjudicate"):
        curation.write_classification_truth(tmp_path / "truth.csv", {"2.25.1": 1, "2.25.2": None}, positive=1)
    assert list(tmp_path.iterdir()) == []


def test_detection_truth_is_the_rsna_csv_and_scores_a_perfect_prediction(tmp_path):
    fused = curation.fuse_boxes({"2.25.1": {"A": [[100, 120, 50, 60]], "B": [[100, 120, 50, 60]]},
                                 "2.25.2": {"A": [], "B": []}}, {"2.25.1": (1024, 1024), "2.25.2": (1024, 1024)})
    path = curation.write_detection_truth(tmp_path / "boxes.csv", {c: f.boxes for c, f in fused.items()})
    assert path.read_text() == ("patientId,x,y,width,height,Target\n"
                                "2.25.1,100,120,50,60,1\n2.25.2,,,,,0\n")
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("patientId,PredictionString\n2.25.1,0.9 100 120 50 60\n2.25.2,\n")
    result = evaluator.score("detection", path, predictions)
    assert result["n_cases"] == 2 and result["metrics"]["map"] == 1.0


def test_fractional_box_coordinates_keep_their_precision(tmp_path):
    path = curation.write_detection_truth(tmp_path / "boxes.csv", {"c": [[10.25, 3.5, 20.125, 7.0]]})
    assert path.read_text().splitlines()[1] == "c,10.25,3.5,20.125,7,1"


def test_png_masks_are_read_by_the_evaluator(tmp_path, rng):
    masks = {f"2.25.{i}": (rng.random((32, 48)) < 0.3).astype(np.uint8) for i in range(3)}
    voted = curation.majority_vote_mask({c: {"A": m, "B": m, "C": 1 - m} for c, m in masks.items()})
    folder = curation.write_mask_truth(tmp_path / "masks", {c: v.mask for c, v in voted.items()})
    assert sorted(p.name for p in folder.iterdir()) == [f"2.25.{i}.png" for i in range(3)]
    assert evaluator.truth_case_ids("segmentation", folder) == sorted(masks)
    result = evaluator.score("segmentation", folder, folder)
    assert result["metrics"]["dice"] == 1.0
    from PIL import Image
    assert np.array_equal(np.asarray(Image.open(folder / "2.25.1.png")), masks["2.25.1"])


def test_3d_masks_become_nifti_with_their_spacing(tmp_path):
    import nibabel as nib

    m = np.zeros((4, 5, 6), np.uint8)
    m[1:3, 2:4, 1:5] = 2
    folder = curation.write_mask_truth(tmp_path / "masks", {"2.25.9": m}, spacing={"2.25.9": (0.7, 0.7, 2.5)})
    img = nib.load(str(folder / "2.25.9.nii.gz"))
    assert np.array_equal(np.asarray(img.dataobj), m)
    assert img.header.get_zooms() == pytest.approx((0.7, 0.7, 2.5))
    assert evaluator.score("segmentation", folder, folder)["metrics"]["dice"] == 1.0


def test_exports_never_overwrite_an_existing_truth(tmp_path):
    (tmp_path / "truth.csv").write_text("keep me")
    with pytest.raises(FileExistsError):
        curation.write_classification_truth(tmp_path / "truth.csv", {"c": 1}, positive=1)
    assert (tmp_path / "truth.csv").read_text() == "keep me"


@pytest.mark.parametrize("write, data, message", [
    (curation.write_detection_truth, {"2.25.1": [[1, 2, -3, 4]]}, "case '2.25.1': box 0 has a negative width"),
    (curation.write_detection_truth, {"a/b": []}, "case 'a/b': a case id must be"),
    (curation.write_mask_truth, {"2.25.1": np.zeros((3, 3)), "2.25.2": np.zeros((3, 3, 3))},
     "case '2.25.2': 2-D and 3-D masks cannot share"),
    (curation.write_mask_truth, {"2.25.1": np.full((3, 3), -1)}, "case '2.25.1': mask labels must be non-negative"),
    (curation.write_mask_truth, {"2.25.1": np.full((3, 3), 0.5)}, "case '2.25.1': mask labels must be integers"),
    (curation.write_mask_truth, {}, "no cases"),
])
def test_bad_truths_are_refused_before_anything_is_written(tmp_path, write, data, message):
    with pytest.raises(ValueError, match=message):
        write(tmp_path / "out", data)
    assert list(tmp_path.iterdir()) == []


def test_multilabel_and_regression_truths_are_read_by_the_evaluator(tmp_path):
    path = curation.write_multilabel_truth(tmp_path / "labels.csv", {"2.25.1": ["edema"], "2.25.2": [],
                                                                     "2.25.3": ["edema", "effusion"]},
                                           columns=["edema", "effusion"])
    assert path.read_text() == "case_id,edema,effusion\n2.25.1,1,0\n2.25.2,0,0\n2.25.3,1,1\n"
    assert evaluator.describe_truth("classification", path)["labels"] == ["edema", "effusion"]
    path = curation.write_regression_truth(tmp_path / "values.csv", {"2.25.1": 3, "2.25.2": 4.5})
    assert path.read_text() == "case_id,value\n2.25.1,3\n2.25.2,4.5\n"
    assert evaluator.truth_case_ids("regression", path) == ["2.25.1", "2.25.2"]
    for call, match in ((lambda: curation.write_multilabel_truth(tmp_path / "a.csv", {"2.25.1": None},
                                                                 columns=["a", "b"]), "case '2.25.1': no consensus"),
                        (lambda: curation.write_multilabel_truth(tmp_path / "a.csv", {"2.25.1": ["c"]},
                                                                 columns=["a", "b"]), "not one of the columns"),
                        (lambda: curation.write_regression_truth(tmp_path / "b.csv", {"2.25.1": float("nan")}),
                         "case '2.25.1': no consensus value, or not a finite number")):
        with pytest.raises(ValueError, match=match):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "values.csv"]
