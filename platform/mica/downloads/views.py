"""The challenge's data page (participants download, organizers prepare releases) and the log."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from mica.challenges.access import organized_challenge

from .access import downloadable_challenge, releases_for
from .forms import ReleaseForm
from .models import DataRelease, DownloadRecord


@login_required
def challenge_data(request, slug):
    challenge = downloadable_challenge(request.user, slug)
    is_organizer = challenge.is_organizer(request.user)
    form = None
    if is_organizer:
        form = ReleaseForm(request.POST or None, request.FILES or None, challenge=challenge)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                DataRelease.create(challenge=challenge, dataset=data["dataset"], name=data["name"], kind=data["kind"],
                                   user=request.user, test_set=data["test_set"], labels=data["labels"],
                                   image_format=data["image_format"])
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                messages.success(request, "Release queued: a worker reads its files, then it is ready to download.")
                return redirect("downloads:challenge", slug=challenge.slug)
    elif request.method == "POST":
        return redirect("downloads:challenge", slug=challenge.slug)
    return render(request, "downloads/challenge.html", {
        "challenge": challenge, "releases": releases_for(request.user, challenge), "form": form,
        "is_organizer": is_organizer,
    }, status=400 if form is not None and form.errors else 200)


@login_required
def delete_release(request, slug, pk):
    challenge = organized_challenge(request.user, slug)
    if request.method == "POST":
        get_object_or_404(challenge.data_releases, pk=pk).delete_with_files()
        messages.success(request, "Release deleted.")
    return redirect("downloads:challenge", slug=challenge.slug)


@login_required
def download_log(request, slug):
    challenge = organized_challenge(request.user, slug)
    records = DownloadRecord.objects.filter(release__challenge=challenge).select_related("release", "user")[:1000]
    return render(request, "downloads/log.html", {"challenge": challenge, "records": records})
