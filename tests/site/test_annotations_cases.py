"""Cases of a dataset: the case list, the private map of original identifiers, label import.

Bad inputs tried: a label file with a wrong first column, a non-UTF-8 file, rows naming no case,
a series UID when cases are instances (one key, several cases), conflicting duplicate rows, a row
with too few columns, a cell that a spreadsheet would run as a formula.
"""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mica.core.csv_export import spreadsheet_safe
from mica.datasets.cases import identifier_rows, set_case_level
from mica.datasets.models import Case, Instance

from .conftest import PASSWORD, make_user
from .imaging import CT_SLICES, PATIENT_ID, PATIENT_NAME, ingested_dataset

pytestmark = pytest.mark.django_db


def rows_of(response):
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_a_case_is_an_instance_a_series_or_a_study_and_knows_its_patient(challenge, organizer, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="instance")
    assert dataset.cases.count() == Instance.objects.filter(dataset=dataset).count() == 2 + CT_SLICES + 1
    assert set_case_level(dataset, "series") == 4  # two radiographs, the CT series, the multi-frame series
    ct = next(case for case in dataset.cases.all() if case.instances.count() == CT_SLICES)
    assert ct.patient_pseudonym == ct.study.patient_pseudonym and ct.patient_pseudonym.startswith("MICA-")
    assert set_case_level(dataset, "study") == 3
    assert dataset.cases.values("patient_pseudonym").distinct().count() == 3
    assert sum(case.instances.count() for case in dataset.cases.all()) == 2 + CT_SLICES + 1


def test_organizers_export_the_case_list_and_the_private_identifier_map(client, challenge, organizer, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="series")
    client.login(username=organizer.username, password=PASSWORD)
    cases = rows_of(client.get(f"/datasets/{dataset.pk}/cases.csv"))
    assert {row["case_id"] for row in cases} == set(dataset.cases.values_list("case_id", flat=True))
    assert {row["n_images"] for row in cases} == {"1", str(CT_SLICES)}
    response = client.get(f"/datasets/{dataset.pk}/original-identifiers.csv")
    assert response["Cache-Control"] == "no-store"
    identifiers = rows_of(response)
    assert len(identifiers) == 2 + CT_SLICES + 1
    ct_rows = [row for row in identifiers if "/ct/" in row["file_in_upload"]]
    assert len({row["case_id"] for row in ct_rows}) == 1  # one series, one case
    assert all(row["original_sop_instance_uid"].startswith("1.2.826.0.1.3680043") for row in identifiers)
    # The originals are nowhere but in that private file.
    for instance in Instance.objects.filter(dataset=dataset):
        assert instance.uid not in {row["original_sop_instance_uid"] for row in identifiers}


@pytest.mark.parametrize("who", ["anonymous", "outsider", "participant", "annotator"])
def test_only_organizers_get_the_exports_and_the_import(client, challenge, organizer, participant, annotator,
                                                        outsider, tmp_path, who):
    dataset = ingested_dataset(challenge, organizer, tmp_path)
    dataset.visible_to_participants = True
    dataset.save()
    challenge.register(participant)
    user = {"outsider": outsider, "participant": participant, "annotator": annotator}.get(who)
    if user:
        client.login(username=user.username, password=PASSWORD)
    for url in ("cases.csv", "original-identifiers.csv", "import-labels/"):
        response = client.get(f"/datasets/{dataset.pk}/{url}")
        assert response.status_code == (302 if who == "anonymous" else 403), url


def test_co_organizers_and_staff_get_the_exports(client, challenge, organizer, tmp_path):
    from mica.challenges.models import ChallengeRole, Role

    dataset = ingested_dataset(challenge, organizer, tmp_path)
    co_organizer, staff = make_user("cora"), make_user("stan", is_staff=True)
    ChallengeRole.objects.create(challenge=challenge, user=co_organizer, role=Role.ORGANIZER)
    for user in (co_organizer, staff):
        client.login(username=user.username, password=PASSWORD)
        assert client.get(f"/datasets/{dataset.pk}/original-identifiers.csv").status_code == 200


def test_labels_by_original_identifiers_are_mapped_onto_cases_and_every_unmatched_row_is_named(
        client, challenge, organizer, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="series")
    identifiers = identifier_rows(dataset)
    by_file = {row["file_in_upload"]: row for row in identifiers}
    ct_series = by_file[f"{PATIENT_NAME}2/ct/0.dcm"]["original_series_uid"]
    chest = by_file[f"{PATIENT_NAME}0/chest.dcm"]["original_series_uid"]
    lines = ["original_series_uid,pneumonia,note", f"{ct_series},1,=HYPERLINK(\"x\")", f"{chest},0,-3",
             "1.2.3.4.5,1,unknown", f"{chest},1,conflict", "short", ""]
    client.login(username=organizer.username, password=PASSWORD)
    response = client.post(f"/datasets/{dataset.pk}/import-labels/",
                           {"labels": SimpleUploadedFile("labels.csv", "\n".join(lines).encode())})
    assert response.status_code == 400
    page = response.content.decode()
    assert "3 problems in labels.csv" in page
    assert "row 4: no case has this original_series_uid" in page
    assert "row 5: the same case as row 3 with other labels" in page
    assert "row 6: 1 columns, the header has 3" in page
    assert "1.2.3.4.5" not in page and ct_series not in page  # identifiers are never echoed
    response = client.post(f"/datasets/{dataset.pk}/import-labels/", {
        "labels": SimpleUploadedFile("labels.csv", "\n".join(lines).encode()), "skip_unmatched": "on"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    mapped = {row["case_id"]: row for row in rows_of(response)}
    ct_case = Case.objects.get(dataset=dataset, series__series_uid=Instance.objects.get(
        dataset=dataset, uid=by_file[f"{PATIENT_NAME}2/ct/0.dcm"]["instance_uid"]).series.series_uid)
    assert mapped[ct_case.case_id] == {"case_id": ct_case.case_id, "pneumonia": "1", "note": "'=HYPERLINK(\"x\")"}
    assert [row["note"] for row in mapped.values() if row["case_id"] != ct_case.case_id] == ["-3"]


def test_a_key_coarser_than_a_case_and_a_bad_header_are_refused(client, challenge, organizer, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="instance")
    ct_series = next(row["original_series_uid"] for row in identifier_rows(dataset) if "/ct/" in row["file_in_upload"])
    client.login(username=organizer.username, password=PASSWORD)
    content = f"original_series_uid,label\n{ct_series},1\n".encode()
    page = client.post(f"/datasets/{dataset.pk}/import-labels/",
                       {"labels": SimpleUploadedFile("l.csv", content)}).content.decode()
    assert f"row 2: this original_series_uid spans {CT_SLICES} cases" in page
    for content, expected in ((b"patient_id,label\nx,1\n", "row 1: the first column must be one of"),
                              (b"\xff\xfe\x00bad", "not UTF-8 text")):
        page = client.post(f"/datasets/{dataset.pk}/import-labels/",
                           {"labels": SimpleUploadedFile("l.csv", content)}).content.decode()
        assert expected in page
    assert PATIENT_ID not in page


def test_spreadsheet_formulas_are_neutralised_but_numbers_kept():
    assert spreadsheet_safe("=1+2") == "'=1+2"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("+cmd") == "'+cmd"
    assert spreadsheet_safe("-2.5") == "-2.5"
    assert spreadsheet_safe("2.25.1") == "2.25.1"


def test_accession_numbers_and_patient_ids_of_the_private_report_key_label_imports(client, challenge, organizer,
                                                                                   tmp_path):
    """The anonymizer's private report carries each file's accession number and original patient
    ID: the map records them and label imports keyed by them land on the right cases."""
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="study")
    rows = identifier_rows(dataset)
    # The synthetic studies' accession numbers: ACC, the patient ID's last four digits, 77.
    accession_of = {f"{PATIENT_ID}{n}": f"ACC{f'{PATIENT_ID}{n}'[-4:]}77" for n in range(3)}
    assert {row["original_patient_id"]: row["accession_number"] for row in rows} == accession_of
    assert {row["issuer_of_patient_id"] for row in rows} == {""}
    first, third = accession_of[f"{PATIENT_ID}0"], accession_of[f"{PATIENT_ID}2"]
    client.login(username=organizer.username, password=PASSWORD)
    exported = rows_of(client.get(f"/datasets/{dataset.pk}/original-identifiers.csv"))
    assert {row["original_patient_id"] for row in exported} == {f"{PATIENT_ID}{n}" for n in range(3)}
    study_of = {row["accession_number"]: row["case_id"] for row in rows}
    content = f"accession_number,pneumonia\n{first},1\n{third},0\nACC-9,1\n".encode()
    response = client.post(f"/datasets/{dataset.pk}/import-labels/",
                           {"labels": SimpleUploadedFile("l.csv", content), "skip_unmatched": "on"})
    assert {row["case_id"]: row["pneumonia"] for row in rows_of(response)} == {study_of[first]: "1",
                                                                              study_of[third]: "0"}
    page = client.post(f"/datasets/{dataset.pk}/import-labels/",
                       {"labels": SimpleUploadedFile("l.csv", content)}).content.decode()
    assert "row 4: no case has this accession_number" in page and "ACC-9" not in page
    by_patient = f"original_patient_id,pneumonia\n{PATIENT_ID}2,1\n".encode()
    response = client.post(f"/datasets/{dataset.pk}/import-labels/", {"labels": SimpleUploadedFile("p.csv", by_patient)})
    assert rows_of(response) == [{"case_id": study_of[third], "pneumonia": "1"}]
