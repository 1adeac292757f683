from axes.backends import AxesStandaloneBackend


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout for every log-in that comes from a request.

    The log-in form, the admin log-in and the token endpoint all pass their request. Code that
    checks a password without one (a script, the test client's login()) is not an attempt from
    outside: it is left to the next backend instead of raising.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
