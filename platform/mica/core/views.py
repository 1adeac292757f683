from django.shortcuts import render

from mica.challenges.models import Challenge


def home(request):
    return render(request, "core/home.html", {"challenges": Challenge.objects.all()})
