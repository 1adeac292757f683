"""Export a challenge as a bundle; create one from a bundle (Mica's or Codabench's)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from .access import check_importer, exportable_challenge
from .forms import ImportForm
from .importing import import_bundle
from .mica_format import export_bundle
from .reading import BundleError


def bundle_response(challenge, with_truth):
    response = HttpResponse(export_bundle(challenge, with_truth=with_truth), content_type="application/zip")
    suffix = "-with-truth" if with_truth else ""
    response["Content-Disposition"] = f'attachment; filename="{challenge.slug}{suffix}.zip"'
    response["Cache-Control"] = "no-store"  # the truth is hidden data: no copy in a shared cache
    return response


@login_required
def export_page(request, slug):
    challenge = exportable_challenge(request.user, slug)
    return render(request, "bundles/export.html", {"challenge": challenge})


@login_required
def export(request, slug):
    challenge = exportable_challenge(request.user, slug)
    return bundle_response(challenge, with_truth=request.GET.get("truth") == "1")


@login_required
def import_page(request):
    check_importer(request.user)
    form = ImportForm(request.POST or None, request.FILES or None)
    problems, result = [], None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = import_bundle(data["bundle"], user=request.user, slug=data["slug"] or None,
                                   task_type=data["task_type"] or None)
        except BundleError as error:
            problems = error.problems
    status = 400 if problems or form.errors else (201 if result else 200)
    return render(request, "bundles/import.html", {"form": form, "problems": problems, "result": result},
                  status=status)
