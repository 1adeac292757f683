from django.conf import settings


def client_address(request):
    """The client's IP address, for counting failed log-ins per address.

    With no trusted proxy (MICA_PROXY_COUNT=0) it is the connection's address: X-Forwarded-For is
    the client's own text and would let it pick a new address per attempt. Behind N proxies, each
    appends the address it saw, so the client is the N-th entry from the right.
    """
    if settings.MICA_PROXY_COUNT:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-min(settings.MICA_PROXY_COUNT, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")
