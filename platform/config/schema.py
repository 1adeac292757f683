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
    "description": "Each field (or non_field_errors) with the list of its problems; or, for an address "
                   "holding a NUL character (refused on every operation), its detail.",
    "additionalProperties": {},
}
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# The addresses' text parameters may hold anything but a NUL (mica.core.middleware refuses it).
_NO_NUL = "^[^\\x00]*$"


class MicaAutoSchema(AutoSchema):
    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter["in"] in ("path", "query") and schema.get("type") == "string" \
                    and not {"pattern", "enum", "format"} & schema.keys():
                schema["pattern"] = _NO_NUL
        return parameters

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
        codes = ["400"]  # mica.core.middleware refuses a NUL in any path or query string
        if self.method in _BODY_METHODS:
            codes.append("415")
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
