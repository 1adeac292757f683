from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

import anonymizer
import anonymizer.keys
from curation.images import png_to_dicom
from mica.challenges.access import organized_challenge
from mica.core.storage import download_response

from .forms import DatasetEditForm, DatasetForm, UploadForm
from .models import Dataset, Instance, Upload


def _viewable_dataset(request, pk):
    dataset = get_object_or_404(Dataset.objects.select_related("challenge"), pk=pk)
    if not dataset.can_be_viewed_by(request.user):
        raise PermissionDenied("This dataset is not open to you.")
    return dataset


@login_required
def create(request, slug):
    challenge = organized_challenge(request.user, slug)
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.instance.challenge = challenge
        form.instance.created_by = request.user
        dataset = form.save()
        return redirect(dataset)
    return render(request, "datasets/create.html", {"challenge": challenge, "form": form})


def _organized_dataset(request, pk):
    dataset = get_object_or_404(Dataset.objects.select_related("challenge"), pk=pk)
    if not dataset.challenge.is_organizer(request.user):
        raise PermissionDenied("Only the challenge's organizers change its datasets.")
    return dataset


@login_required
def edit(request, pk):
    dataset = _organized_dataset(request, pk)
    form = DatasetEditForm(request.POST or None, instance=dataset)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Dataset saved.")
        return redirect(dataset)
    return render(request, "core/form_page.html", {"form": form, "title": f"Edit {dataset.name}", "submit": "Save",
                                                   "challenge": dataset.challenge})


@login_required
@require_POST
def delete(request, pk):
    dataset = _organized_dataset(request, pk)
    dependents = dataset.dependents()
    if dependents:
        messages.error(request, f"The dataset has {', '.join(dependents)}; it cannot be deleted.")
        return redirect(dataset)
    dataset.delete_with_files()
    messages.success(request, "Dataset deleted, with its anonymized images.")
    return redirect(dataset.challenge)


@login_required
def detail(request, pk):
    dataset = _viewable_dataset(request, pk)
    instances = Instance.objects.filter(dataset=dataset).select_related("series__study")
    page = Paginator(instances, 48).get_page(request.GET.get("page"))
    is_organizer = dataset.challenge.is_organizer(request.user)
    context = {
        "dataset": dataset,
        "page": page,
        "is_organizer": is_organizer,
        "uploads": dataset.uploads.all()[:20] if is_organizer else [],
        "n_studies": dataset.studies.count(),
        "n_cases": dataset.cases.count(),
        "n_patients": dataset.studies.values("patient_pseudonym").distinct().count(),
    }
    return render(request, "datasets/detail.html", context)


@login_required
def upload(request, pk):
    dataset = _organized_dataset(request, pk)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            received = Upload.receive(dataset=dataset, user=request.user, uploaded_file=form.cleaned_data["archive"])
        except ValueError as error:
            form.add_error("archive", str(error))
        else:
            messages.success(request, "Upload received: it is being anonymized.")
            return redirect(received)
    return render(request, "datasets/upload_form.html", {"dataset": dataset, "form": form})


@login_required
def upload_detail(request, uuid):
    upload = get_object_or_404(Upload.objects.select_related("dataset__challenge"), uuid=uuid)
    if not upload.dataset.challenge.is_organizer(request.user):
        raise PermissionDenied("Only the organizers of this challenge can see its uploads.")
    return render(request, "datasets/upload_detail.html", {"upload": upload, "quarantined": upload.quarantined.all()})


@login_required
def preview(request, pk, uid):
    dataset = _viewable_dataset(request, pk)
    instance = get_object_or_404(Instance, dataset=dataset, uid=uid)
    if not instance.preview:
        raise Http404("This image has no preview.")
    return FileResponse(instance.preview.open("rb"), content_type="image/png")


@login_required
def download_as_dicom(request, pk, uid):
    """A PNG image wrapped as a DICOM Secondary Capture, as RSNA served its PNG datasets."""
    dataset = _viewable_dataset(request, pk)
    instance = get_object_or_404(Instance, dataset=dataset, uid=uid, kind="png")
    key = bytes(dataset.anonymization_key)
    # Keyed UIDs: the same image gets the same UIDs on every download.
    with instance.file.open("rb") as png:
        content = png_to_dicom(
            png,
            patient_id=anonymizer.keys.patient_pseudonym(key, f"png:{uid}"),
            study_uid=anonymizer.keys.keyed_uid(key, f"png-study:{uid}"),
            series_uid=anonymizer.keys.keyed_uid(key, f"png-series:{uid}"),
            sop_instance_uid=anonymizer.keys.keyed_uid(key, f"png-instance:{uid}"),
        )
    response = HttpResponse(content, content_type="application/dicom")
    response["Content-Disposition"] = f'attachment; filename="{uid}.dcm"'
    return response


@login_required
def download(request, pk, uid):
    dataset = _viewable_dataset(request, pk)
    instance = get_object_or_404(Instance, dataset=dataset, uid=uid)
    return download_response(instance.file, instance.file.name.rsplit("/", 1)[-1])
