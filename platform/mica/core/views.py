from django.shortcuts import render

from mica.challenges.access import visible_challenges


def home(request):
    challenges = visible_challenges(request.user).prefetch_related("phases")
    return render(request, "core/home.html", {"challenges": challenges})
