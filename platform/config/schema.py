"""The OpenAPI schema documents the error answers every operation can give, not only its success.

drf-spectacular describes the success response of each view; DRF adds errors of its own
(authentication, permission, not found, validation, throttling) on every view. Documenting them
here, once, keeps the schema true for clients and for schemathesis (tests/site/test_api_schema.py).
"""

from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions, serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why the request was refused.")


_VALIDATION_ERRORS = {
    "type": "object",
    "description": "Each field (or non_field_errors) with the list of its problems.",
    "additionalProperties": {},
}
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class MicaAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code == "400":
                responses.setdefault(code, self._get_response_for_code(_VALIDATION_ERRORS, code))
            else:
                responses.setdefault(code, self._get_response_for_code(ErrorSerializer, code))
        return responses

    def _error_codes(self):
        codes = []
        if self.method in _BODY_METHODS:
            codes += ["400", "415"]
        if self.view.get_authenticators():
            codes.append("401")  # a bad or expired token is refused on every operation
        if any(not isinstance(permission, permissions.AllowAny) for permission in self.view.get_permissions()):
            codes.append("403")
        paginated = self._is_list_view() and getattr(self.view, "pagination_class", None)
        if "{" in self.path or paginated:
            codes.append("404")
        if self.view.get_throttles():
            codes.append("429")
        return codes
