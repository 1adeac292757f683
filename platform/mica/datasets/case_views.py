"""The organizer's case list, original-identifier map, label import and pulls from DICOMweb servers."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from .cases import LabelImport, case_list_csv, identifier_map_csv
from .forms import LabelImportForm, PullForm
from .models import Dataset
from .pull import FILTER_KEYS, request_pull


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


@login_required
def pull(request, pk):
    dataset = organized_dataset(request, pk)
    form = PullForm(request.POST or None, sources=settings.MICA_DICOMWEB_SOURCES)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            request_pull(dataset, request.user, data["source"], data["study_uids"].splitlines(),
                         {key: data[key] for key in FILTER_KEYS})
        except ValueError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Pull queued: the studies are fetched, then anonymized.")
            return redirect("datasets:pull", pk=dataset.pk)
    return render(request, "datasets/pull.html", {
        "dataset": dataset, "form": form, "pulls": dataset.pulls.select_related("upload")[:20],
        "sources": settings.MICA_DICOMWEB_SOURCES,
    })
