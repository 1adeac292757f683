"""The organizer's case list, original-identifier map and label import."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from .cases import LabelImport, case_list_csv, identifier_map_csv
from .forms import LabelImportForm
from .models import Dataset


def organized_dataset(request, pk):
    dataset = get_object_or_404(Dataset.objects.select_related("challenge"), pk=pk)
    if not dataset.challenge.is_organizer(request.user):
        raise PermissionDenied("Only the organizers of this challenge can do this.")
    return dataset


def _csv_download(content, filename):
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def case_list(request, pk):
    dataset = organized_dataset(request, pk)
    return _csv_download(case_list_csv(dataset), f"dataset-{dataset.pk}-cases.csv")


@login_required
def identifier_map(request, pk):
    dataset = organized_dataset(request, pk)
    response = _csv_download(identifier_map_csv(dataset), f"dataset-{dataset.pk}-original-identifiers.csv")
    response["Cache-Control"] = "no-store"  # it re-identifies: no copy in a shared cache
    return response


@login_required
def import_labels(request, pk):
    dataset = organized_dataset(request, pk)
    form = LabelImportForm(request.POST or None, request.FILES or None)
    mapped = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["labels"]
        mapped = LabelImport(dataset, upload.read(), upload.name)
        if not mapped.problems and (not mapped.unmatched or form.cleaned_data["skip_unmatched"]):
            return _csv_download(mapped.to_csv(), f"dataset-{dataset.pk}-labels-by-case.csv")
    status = 400 if mapped and (mapped.problems or mapped.unmatched) else 200
    return render(request, "datasets/label_import.html", {"dataset": dataset, "form": form, "mapped": mapped},
                  status=status)
