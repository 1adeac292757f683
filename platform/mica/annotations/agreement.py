"""Agreement figures of a project's case-level answers, its readers' workload and re-read consistency."""

from itertools import combinations

from .curation_calls import kappa_matrix, krippendorff_alpha
from .models import Assignment, LabelKind, Reader, readings

COMPARED_KINDS = {LabelKind.CHOICE, LabelKind.MULTIPLE_CHOICE, LabelKind.NUMBER}


def agreement_summary(project):
    labels = [label for label in project.labels.all() if label.kind in COMPARED_KINDS]
    by_case = readings(project)
    readers = list(project.readers.filter(is_adjudicator=False).select_related("user"))
    per_label = []
    for label in labels:
        read = [values for values in ([answers.get(label.key) for answers in by_reader.values()]
                                      for by_reader in by_case.values() if len(by_reader) >= 2)
                if any(value is not None for value in values)]
        unanimous = sum(len({repr(value) for value in values}) == 1 for values in read)
        table = {case.case_id: {reader.user.username: answers[label.key] for reader, answers in by_reader.items()
                                if answers.get(label.key) is not None}
                 for case, by_reader in by_case.items()}
        table = {case: row for case, row in table.items() if row}
        level = "interval" if label.kind == LabelKind.NUMBER else "nominal"
        per_label.append({"label": label, "cases": len(read), "unanimous": unanimous,
                          "share": unanimous / len(read) if read else None,
                          "alpha": krippendorff_alpha(table, level) if table else None, "alpha_level": level,
                          "kappa": kappa_matrix(table) if table and label.kind == LabelKind.CHOICE else None})
    matrix = {reader.pk: {} for reader in readers}
    for first, second in combinations(readers, 2):
        agreed = compared = 0
        for by_reader in by_case.values():
            if first in by_reader and second in by_reader:
                for label in labels:
                    pair = by_reader[first].get(label.key), by_reader[second].get(label.key)
                    if pair != (None, None):  # a label neither answered says nothing about agreement
                        compared += 1
                        agreed += pair[0] == pair[1]
        share = agreed / compared if compared else None
        matrix[first.pk][second.pk] = matrix[second.pk][first.pk] = share
    names = [reader.user.username for reader in readers]
    kappas = [{"label": row["label"], "rows": [[name, [row["kappa"].get((name, other)) for other in names]]
                                                for name in names]}
              for row in per_label if row["kappa"] is not None]
    return {
        "per_label": per_label,
        "kappas": kappas,
        "readers": readers,
        "matrix": [[reader, [matrix[reader.pk].get(other.pk) for other in readers]] for reader in readers],
        "workload": [_workload(reader, labels) for reader in readers],
    }


def _workload(reader: Reader, labels):
    assignments = list(reader.assignments.prefetch_related("answers__label"))
    first_reads = {a.case_id: a for a in assignments if not a.is_reread}
    rereads = [a for a in assignments if a.is_reread and a.submitted_at]
    consistent = 0
    for reread in rereads:
        first = first_reads.get(reread.case_id)
        if first and first.submitted_at:
            first_answers, second_answers = (_answers(item) for item in (first, reread))
            consistent += all(first_answers.get(label.key) == second_answers.get(label.key) for label in labels)
    return {
        "reader": reader,
        "assigned": len(assignments),
        "submitted": sum(a.submitted_at is not None for a in assignments),
        "rereads": len(rereads),
        "intra_reader_share": consistent / len(rereads) if rereads else None,
    }


def _answers(assignment: Assignment):
    return {answer.label.key: answer.value for answer in assignment.answers.all()}
