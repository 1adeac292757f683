"""Cases of a dataset, and the private map from a hospital's identifiers to case ids.

A case is an instance, a series or a study, as its dataset says, named by its anonymized UID.
At ingest the anonymizer's UID map (original UID → new UID) and each file's path inside the
upload, with the accession number and original patient ID the anonymizer's private report
carries, are written to a CSV in private storage, one per upload: it re-identifies, so it is
never in the database, never on a page, and only organizers can download it.
"""

import csv
import io

from django.db import transaction

import anonymizer
from mica.core.csv_export import csv_text
from mica.core.storage import private_storage

from .models import Case, CaseLevel, Instance

IDENTIFIER_COLUMNS = ["file_in_upload", "accession_number", "original_patient_id", "issuer_of_patient_id",
                      "original_study_uid", "original_series_uid", "original_sop_instance_uid", "instance_uid"]
# The keys a label file may use in its first column, and the identifier-map column each matches.
LABEL_KEYS = {
    "file_in_upload": "file_in_upload",
    "accession_number": "accession_number",
    "original_patient_id": "original_patient_id",
    "original_study_uid": "original_study_uid",
    "original_series_uid": "original_series_uid",
    "original_sop_instance_uid": "original_sop_instance_uid",
}


def index_cases(dataset):
    """Creates a Case for every instance, series or study (as the dataset says) that has none."""
    known = set(dataset.cases.values_list("case_id", flat=True))
    new_cases = {}
    for instance in Instance.objects.filter(dataset=dataset).select_related("series__study"):
        case = _case_of(dataset, instance)
        if case.case_id not in known:
            new_cases.setdefault(case.case_id, case)
    Case.objects.bulk_create(new_cases.values(), ignore_conflicts=True)
    return len(new_cases)


def _case_of(dataset, instance):
    if instance.series is None:  # a PNG or JPEG image: its own case, its own pseudonymous patient
        import anonymizer.keys

        pseudonym = anonymizer.keys.patient_pseudonym(bytes(dataset.anonymization_key), f"png:{instance.uid}")
        return Case(dataset=dataset, case_id=instance.uid, level=CaseLevel.INSTANCE, patient_pseudonym=pseudonym,
                    instance=instance)
    series, study = instance.series, instance.series.study
    level = dataset.case_level
    case_id = {CaseLevel.INSTANCE: instance.uid, CaseLevel.SERIES: series.series_uid,
               CaseLevel.STUDY: study.study_uid}[level]
    return Case(dataset=dataset, case_id=case_id, level=level, patient_pseudonym=study.patient_pseudonym,
                study=study, series=series if level != CaseLevel.STUDY else None,
                instance=instance if level == CaseLevel.INSTANCE else None)


def identifier_map_path(upload):
    return f"identifiers/{upload.dataset_id}/{upload.uuid}.csv"


def record_original_identifiers(upload, report):
    """Writes the upload's original identifiers of each anonymized file to private storage."""
    original_of = {new: old for old, new in report.uid_map.items()}
    rows = []
    for outcome in report.anonymized:
        if outcome.kind == "dicom":
            # From the anonymizer's private report; the UID map stands in for the UIDs when a file
            # had to be re-run alone (its worker process died) and so lost its original identifiers.
            original = outcome.original or anonymizer.OriginalIdentifiers()
            rows.append([outcome.private_source, original.accession_number or "", original.patient_id or "",
                         original.issuer_of_patient_id or "",
                         original.study_uid or original_of.get(outcome.study_uid, ""),
                         original.series_uid or original_of.get(outcome.series_uid, ""),
                         original.sop_instance_uid or original_of.get(outcome.sop_instance_uid, ""),
                         outcome.sop_instance_uid])
        else:
            rows.append([outcome.private_source, "", "", "", "", "", "",
                         outcome.output.rsplit("/", 1)[-1].rsplit(".", 1)[0]])
    path = identifier_map_path(upload)
    if private_storage().exists(path):
        private_storage().delete(path)
    private_storage().save(path, io.BytesIO(csv_text(IDENTIFIER_COLUMNS, rows).encode()))


def identifier_rows(dataset):
    """Every recorded original identifier of the dataset with its case id (organizers only)."""
    case_of_instance = _case_ids_by_instance_uid(dataset)
    rows = []
    for upload in dataset.uploads.order_by("created_at"):
        path = identifier_map_path(upload)
        if not private_storage().exists(path):
            continue
        with private_storage().open(path, "rb") as handle:
            for row in csv.DictReader(io.StringIO(handle.read().decode())):
                case_id = case_of_instance.get(row["instance_uid"])
                if case_id is not None:  # a map written before a column existed has it empty
                    rows.append({**{column: row.get(column) or "" for column in IDENTIFIER_COLUMNS}, "case_id": case_id})
    return rows


def _case_ids_by_instance_uid(dataset):
    mapping = {}
    for case in dataset.cases.all():
        for uid in case.instances.values_list("uid", flat=True):
            mapping[uid] = case.case_id
    return mapping


def identifier_map_csv(dataset):
    columns = ["case_id", *IDENTIFIER_COLUMNS]
    return csv_text(columns, ([row[column] for column in columns] for row in identifier_rows(dataset)))


def case_list_csv(dataset):
    cases = dataset.cases.select_related("study", "series", "instance").order_by("case_id")
    return csv_text(
        ["case_id", "level", "patient_pseudonym", "study_uid", "series_uid", "n_images"],
        ([case.case_id, case.level, case.patient_pseudonym, case.study.study_uid if case.study else "",
          case.series.series_uid if case.series else "", case.instances.count()] for case in cases),
    )


class LabelImport:
    """A label CSV keyed by original identifiers, mapped onto case ids.

    The first column names the key (one of LABEL_KEYS); the other columns are the labels.
    Problems name the row (and column), never the identifier, which would re-identify.
    """

    def __init__(self, dataset, content, filename="labels.csv"):
        self.filename = filename
        self.problems = []  # fatal: nothing can be mapped
        self.unmatched = []  # rows that name no case, or more than one
        self.header = []
        self.rows = []  # [case_id, *labels]
        self._map(dataset, content)

    def _map(self, dataset, content):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.problems.append(f"{self.filename}: not UTF-8 text")
            return
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header or header[0].strip() not in LABEL_KEYS or len(header) < 2:
            self.problems.append(
                f"{self.filename}, row 1: the first column must be one of {', '.join(LABEL_KEYS)}, "
                "followed by at least one label column"
            )
            return
        key = header[0].strip()
        self.header = ["case_id", *[name.strip() for name in header[1:]]]
        cases_of = {}
        for identifier_row in identifier_rows(dataset):
            value = identifier_row[LABEL_KEYS[key]]
            if value:
                cases_of.setdefault(value, set()).add(identifier_row["case_id"])
        labels_of_case = {}
        for row_number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                self.unmatched.append(f"row {row_number}: {len(row)} columns, the header has {len(header)}")
                continue
            cases = cases_of.get(row[0].strip(), set())
            if not cases:
                self.unmatched.append(f"row {row_number}: no case has this {key}")
            elif len(cases) > 1:
                self.unmatched.append(
                    f"row {row_number}: this {key} spans {len(cases)} cases (the dataset's cases are "
                    f"{dataset.get_case_level_display().lower()}s); use a finer key"
                )
            else:
                (case_id,) = cases
                labels = row[1:]
                if case_id in labels_of_case and labels_of_case[case_id][1] != labels:
                    self.unmatched.append(
                        f"row {row_number}: the same case as row {labels_of_case[case_id][0]} with other labels"
                    )
                elif case_id not in labels_of_case:
                    labels_of_case[case_id] = (row_number, labels)
        self.rows = [[case_id, *labels] for case_id, (_, labels) in sorted(labels_of_case.items())]

    @property
    def all_problems(self):
        return self.problems + self.unmatched

    def to_csv(self):
        return csv_text(self.header, self.rows)


@transaction.atomic
def set_case_level(dataset, level):
    """Changes what a case is and re-indexes, while no annotation project reads the dataset."""
    if dataset.annotation_projects.exists():
        raise ValueError("The case level cannot change once an annotation project reads this dataset.")
    dataset.case_level = level
    dataset.save(update_fields=["case_level"])
    dataset.cases.all().delete()
    return index_cases(dataset)
