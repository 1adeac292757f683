"""Failed token requests counted per address and per username in the cache all processes share."""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from .addresses import client_address


class FailedLoginThrottle(BaseThrottle):
    """Refuses a request once its address or its username failed MICA_LOGIN_FAILURE_LIMIT times.

    A window opens at the first failure and lasts MICA_LOGIN_COOLOFF seconds; the right password
    is refused too until it ends. Successful requests are not counted.
    """

    def _keys(self, request):
        keys = [f"login-failures:address:{client_address(request)}"]
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if isinstance(username, str) and username:
            # Hashed: any text is a valid key, and the cache holds no username.
            digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()
            keys.append(f"login-failures:username:{digest}")
        return keys

    def allow_request(self, request, view):
        keys = self._keys(request)
        counts = cache.get_many(keys)
        blocked = [key for key in keys if counts.get(key, 0) >= settings.MICA_LOGIN_FAILURE_LIMIT]
        if not blocked:
            return True
        opened = cache.get_many([f"{key}:since" for key in blocked]).values()
        self.retry_after = max((settings.MICA_LOGIN_COOLOFF - (time.time() - since) for since in opened),
                               default=settings.MICA_LOGIN_COOLOFF)
        return False

    def wait(self):
        return max(1, int(self.retry_after))

    def record_failure(self, request):
        for key in self._keys(request):
            if cache.add(key, 0, timeout=settings.MICA_LOGIN_COOLOFF):
                cache.set(f"{key}:since", time.time(), timeout=settings.MICA_LOGIN_COOLOFF)
            try:
                cache.incr(key)
            except ValueError:  # the window closed between add and incr
                cache.add(key, 1, timeout=settings.MICA_LOGIN_COOLOFF)
