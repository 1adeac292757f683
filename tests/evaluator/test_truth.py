"""The checks an organizer's ground truth gets when a test set is set up."""

import pytest

import evaluator


def test_it_returns_the_case_ids_in_file_order(write):
    truth = write("truth.csv", "case_id,pneumonia\nc,1\na,0\nb,1\n")
    assert evaluator.truth_case_ids("classification", truth) == ["c", "a", "b"]


def test_it_refuses_a_label_with_one_class(write):
    truth = write("truth.csv", "case_id,any,epidural\na,1,0\nb,0,0\n")
    with pytest.raises(ValueError, match="label 'epidural' has only one class \\(all 0\\)"):
        evaluator.truth_case_ids("classification", truth)


def test_it_names_the_row_of_a_bad_label(write):
    truth = write("truth.csv", "case_id,label\na,1\nb,0\nc,0.5\n")
    with pytest.raises(ValueError, match="row 4"):
        evaluator.truth_case_ids("classification", truth)


def test_regression_and_detection_truths_give_their_ids(write):
    regression = write("bone_age.csv", "case_id,value\nx,120\ny,96.5\n")
    assert evaluator.truth_case_ids("regression", regression) == ["x", "y"]
    detection = write("boxes.csv", "patientId,x,y,width,height,Target\np1,1,2,3,4,1\np1,5,6,7,8,1\np2,,,,,0\n")
    assert sorted(evaluator.truth_case_ids("detection", detection)) == ["p1", "p2"]


def test_the_predictions_header_follows_the_truth(write):
    binary = write("b.csv", "case_id,label\na,1\nb,0\n")
    multi = write("m.csv", "case_id,any,subdural\na,1,0\nb,0,1\n")
    regression = write("r.csv", "case_id,value\na,1\n")
    detection = write("d.csv", "patientId,x,y,width,height,Target\np2,,,,,0\n")
    assert evaluator.predictions_header("classification", binary) == ["case_id", "score"]
    assert evaluator.predictions_header("classification", multi) == ["case_id", "any", "subdural"]
    assert evaluator.predictions_header("regression", regression) == ["case_id", "value"]
    assert evaluator.predictions_header("detection", detection) == ["patientId", "PredictionString"]


def test_a_segmentation_truth_is_a_folder_of_readable_masks(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "masks"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "case-b.png")
    Image.fromarray(np.ones((8, 8), np.uint8)).save(folder / "case-a.png")
    assert evaluator.truth_case_ids("segmentation", folder) == ["case-a", "case-b"]
    assert evaluator.predictions_header("segmentation", folder) is None
    (folder / "case-c.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="case-c.png: is not a readable PNG"):
        evaluator.truth_case_ids("segmentation", folder)
